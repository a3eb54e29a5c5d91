//! `brokerwatch-collector load-report`: the load model on a table an operator
//! hands in (CSV or JSON), for checking a cluster by hand or from a script.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::load::{compute, load_weights, GroupLoad, Metric, Row, Weights};
use crate::model::{verdict, GroupView, LoadView};

pub const DEFAULT_GROUP: &str = "default";

/// Rows grouped by resource group, groups in order of first appearance.
pub type Table = Vec<(String, Vec<Row<i32>>)>;

/// Parses the input: a JSON array of objects when it starts with `[`,
/// otherwise CSV with a header `broker,<metric>,...` and an optional `group`.
pub fn parse_table(text: &str) -> Result<Table, String> {
    if text.trim_start().starts_with('[') {
        parse_json(text)
    } else {
        parse_csv(text)
    }
}

fn check_metric(column: &str) -> Result<Metric, String> {
    Metric::from_name(column).ok_or_else(|| {
        format!(
            "column {column:?} is not a load metric; use broker, group or any of {}",
            Metric::names()
        )
    })
}

fn check_value(value: f64, place: &str) -> Result<f64, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!(
            "{place}: {value} is not a load (a number of 0 or more)"
        ))
    }
}

/// Files a row under its group, refusing a broker that appears twice in one group.
fn add_row(table: &mut Table, group: String, row: Row<i32>, place: &str) -> Result<(), String> {
    let rows = match table.iter_mut().find(|(g, _)| *g == group) {
        Some((_, rows)) => rows,
        None => {
            table.push((group, Vec::new()));
            &mut table.last_mut().expect("just pushed").1
        }
    };
    if rows.iter().any(|r| r.member == row.member) {
        return Err(format!("{place}: broker {} appears twice", row.member));
    }
    rows.push(row);
    Ok(())
}

fn parse_csv(text: &str) -> Result<Table, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("CSV header: {e}"))?
        .clone();
    let broker_column = headers
        .iter()
        .position(|h| h == "broker")
        .ok_or("CSV header has no broker column; start it with broker,<metric>,...")?;
    let group_column = headers.iter().position(|h| h == "group");
    let mut metrics = BTreeMap::new();
    for (i, header) in headers.iter().enumerate() {
        if i != broker_column && Some(i) != group_column {
            metrics.insert(i, check_metric(header)?);
        }
    }
    let mut table = Table::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("CSV: {e}"))?;
        let line = record.position().map_or(0, |p| p.line());
        let place = format!("line {line}");
        let broker_text = record.get(broker_column).unwrap_or_default();
        let member: i32 = broker_text
            .parse()
            .map_err(|_| format!("{place}: broker {broker_text:?} is not a broker id"))?;
        let mut values = BTreeMap::new();
        for (i, cell) in record.iter().enumerate() {
            if i == broker_column || Some(i) == group_column {
                continue;
            }
            let column = &headers[i];
            let value: f64 = cell
                .parse()
                .map_err(|_| format!("{place}, column {column}: {cell:?} is not a number"))?;
            values.insert(
                metrics[&i],
                check_value(value, &format!("{place}, column {column}"))?,
            );
        }
        let group = group_column
            .and_then(|i| record.get(i))
            .filter(|g| !g.is_empty())
            .unwrap_or(DEFAULT_GROUP)
            .to_owned();
        add_row(&mut table, group, Row { member, values }, &place)?;
    }
    if table.is_empty() {
        return Err("the table has no rows".into());
    }
    Ok(table)
}

fn parse_json(text: &str) -> Result<Table, String> {
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(text)
        .map_err(|e| {
            format!(
                "JSON: {e}; expected an array of objects like {{\"broker\":1,\"partitions\":100}}"
            )
        })?;
    let mut table = Table::new();
    for (i, object) in rows.into_iter().enumerate() {
        let place = format!("element {}", i + 1);
        let member = object
            .get("broker")
            .and_then(serde_json::Value::as_i64)
            .and_then(|b| i32::try_from(b).ok())
            .ok_or_else(|| format!("{place}: no integer \"broker\""))?;
        let group = match object.get("group") {
            None => DEFAULT_GROUP.to_owned(),
            Some(serde_json::Value::String(g)) => g.clone(),
            Some(other) => return Err(format!("{place}: group {other} is not a string")),
        };
        let mut values = BTreeMap::new();
        for (key, value) in &object {
            if key == "broker" || key == "group" {
                continue;
            }
            let metric = check_metric(key)?;
            let number = value
                .as_f64()
                .ok_or_else(|| format!("{place}, {key}: {value} is not a number"))?;
            values.insert(metric, check_value(number, &format!("{place}, {key}"))?);
        }
        add_row(&mut table, group, Row { member, values }, &place)?;
    }
    if table.is_empty() {
        return Err("the table has no rows".into());
    }
    Ok(table)
}

/// Parses `--weights partitions=2,cpu_used=0`: the listed weights over the
/// defaults (1 for every metric, 0 for iowait and io_util).
pub fn parse_weights(text: Option<&str>) -> Result<Weights, String> {
    let mut weights = load_weights();
    for pair in text
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (metric, weight) = pair
            .split_once('=')
            .ok_or_else(|| format!("--weights: {pair:?} is not metric=weight"))?;
        let name = metric.trim();
        let metric = check_metric(name).map_err(|e| format!("--weights: {e}"))?;
        let weight: f64 = weight
            .trim()
            .parse()
            .ok()
            .filter(|w: &f64| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| {
                format!("--weights: weight {weight:?} for {name} is not a number of 0 or more")
            })?;
        weights.insert(metric, weight);
    }
    Ok(weights)
}

/// Parses r: `0.1` or `10%`, more than 0 and at most 1.
pub fn parse_deviation(text: &str) -> Result<f64, String> {
    let (number, scale) = match text.trim().strip_suffix('%') {
        Some(percent) => (percent, 0.01),
        None => (text.trim(), 1.0),
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .map(|v| v * scale)
        .filter(|r| *r > 0.0 && *r <= 1.0)
        .ok_or_else(|| {
            format!("deviation {text:?} is not a fraction in (0, 1] or a percentage like 10%")
        })
}

pub fn compute_table(table: &Table, weights: &Weights, deviation: f64) -> Vec<GroupLoad<i32>> {
    table
        .iter()
        .map(|(group, rows)| compute(group, rows, weights, deviation))
        .collect()
}

pub fn to_json(groups: &[GroupLoad<i32>]) -> String {
    let view = LoadView {
        groups: groups
            .iter()
            .map(|g| GroupView::new(g, Vec::new()))
            .collect(),
    };
    serde_json::to_string_pretty(&view).expect("the view serialises")
}

/// The table an operator reads: per broker D_b, r_n and a verdict, then σ
/// against σ_max. The one renderer of the load table: `load-report` prints
/// it, and so does the demo from `GET /api/v1/load`.
pub fn to_table(groups: &[GroupLoad<i32>], deviation: f64) -> String {
    let views: Vec<GroupView> = groups
        .iter()
        .map(|g| GroupView::new(g, Vec::new()))
        .collect();
    render_table(&views, deviation)
}

/// [`to_table`] on the API's view of the load.
pub fn render_table(groups: &[GroupView], deviation: f64) -> String {
    let mut out = String::new();
    for group in groups {
        let _ = writeln!(
            out,
            "group {} ({} brokers; metrics: {})",
            group.group,
            group.brokers.len(),
            group.metrics.join(", ")
        );
        for (metric, why) in &group.skipped_metrics {
            let _ = writeln!(out, "  skipped {metric}: {why}");
        }
        if !group.missing.is_empty() {
            let missing: Vec<String> = group.missing.iter().map(i32::to_string).collect();
            let _ = writeln!(out, "  missing (no fresh report): {}", missing.join(", "));
        }
        let _ = writeln!(
            out,
            "  {:>8} {:>10} {:>11}  verdict",
            "broker", "share", "deviation"
        );
        for broker in &group.brokers {
            let _ = writeln!(
                out,
                "  {:>8} {:>10.6} {:>+10.4}%  {}",
                broker.broker,
                broker.share,
                broker.deviation * 100.0,
                verdict(broker.deviation, deviation, group.can_alert())
            );
        }
        let _ = writeln!(
            out,
            "  stddev {:.6} {} limit {:.6} (r = {}%, N = {}): {}\n",
            group.stddev,
            if group.stddev <= group.stddev_limit {
                "<="
            } else {
                ">"
            },
            group.stddev_limit,
            deviation * 100.0,
            group.brokers.len(),
            if group.balanced {
                "balanced"
            } else {
                "imbalanced"
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKED_EXAMPLE_CSV: &str =
        "broker,partitions,leaders,cpu_used,nw_bytes_in,nw_bytes_out\n\
        1,100,50,0.40,100,200\n2,100,50,0.42,110,210\n3,110,55,0.38,95,190\n4,90,45,0.40,105,200\n";

    #[test]
    fn csv_of_the_worked_example_gives_the_design_figures() {
        let table = parse_table(WORKED_EXAMPLE_CSV).unwrap();
        let groups = compute_table(&table, &parse_weights(None).unwrap(), 0.10);
        let text = to_table(&groups, 0.10);
        for line in [
            "group default (4 brokers; metrics: cpu_used, leaders, nw_bytes_in, nw_bytes_out, partitions)",
            "         1   0.248780    -0.4878%  ok",
            "         2   0.258659    +3.4634%  ok",
            "         3   0.251341    +0.5366%  ok",
            "         4   0.241220    -3.5122%  ok",
            "  stddev 0.006232 <= limit 0.025000 (r = 10%, N = 4): balanced",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn json_input_and_two_groups() {
        let text = r#"[
            {"broker": 1, "group": "payments", "partitions": 100, "nw_bytes_in": 10},
            {"broker": 2, "group": "payments", "partitions": 300, "nw_bytes_in": 30},
            {"broker": 3, "group": "search", "partitions": 50, "nw_bytes_in": 5},
            {"broker": 4, "group": "search", "partitions": 50, "nw_bytes_in": 5}
        ]"#;
        let table = parse_table(text).unwrap();
        let groups = compute_table(&table, &parse_weights(None).unwrap(), 0.10);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].group, "payments");
        assert!((groups[0].members[1].share - 0.75).abs() < 1e-12);
        assert!(!groups[0].balanced);
        assert_eq!(groups[1].group, "search");
        assert!(groups[1].balanced);
        // Groups never mix: broker 3's share is of its own group's load.
        assert!((groups[1].members[0].share - 0.5).abs() < 1e-12);
        let json: serde_json::Value = serde_json::from_str(&to_json(&groups)).unwrap();
        assert_eq!(json["groups"][0]["brokers"][1]["broker"], 2);
        assert_eq!(json["groups"][0]["balanced"], false);
        let text = to_table(&groups, 0.10);
        assert!(
            text.contains("         2   0.750000   +50.0000%  overloaded"),
            "{text}"
        );
        assert!(
            text.contains("         1   0.250000   -50.0000%  underloaded"),
            "{text}"
        );
    }

    #[test]
    fn a_group_column_in_csv_splits_groups() {
        let csv = "broker,group,partitions\n1,a,10\n2,a,30\n3,b,10\n";
        let table = parse_table(csv).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(table[1].0, "b");
        assert_eq!(table[1].1[0].member, 3);
    }

    #[test]
    fn bad_tables_get_one_line_naming_the_place() {
        let cases = [
            ("partitions\n10\n", "CSV header has no broker column"),
            (
                "broker,disk_space\n1,10\n",
                "column \"disk_space\" is not a load metric",
            ),
            (
                "broker,partitions\n1,ten\n",
                "line 2, column partitions: \"ten\" is not a number",
            ),
            (
                "broker,partitions\nx,10\n",
                "line 2: broker \"x\" is not a broker id",
            ),
            (
                "broker,partitions\n1,-5\n",
                "line 2, column partitions: -5 is not a load",
            ),
            (
                "broker,partitions\n1,5\n1,6\n",
                "line 3: broker 1 appears twice",
            ),
            ("broker,partitions\n1,5,7\n", "CSV: "),
            ("broker,partitions\n", "the table has no rows"),
            ("[{\"partitions\": 1}]", "element 1: no integer \"broker\""),
            (
                "[{\"broker\": 1, \"partitions\": \"x\"}]",
                "element 1, partitions: \"x\" is not a number",
            ),
            ("[1, 2", "JSON: "),
        ];
        for (text, expected) in cases {
            let err = parse_table(text).unwrap_err();
            assert!(
                err.starts_with(expected),
                "for {text:?}: got {err:?}, want {expected:?}..."
            );
            assert!(!err.contains('\n'), "{err:?}");
        }
    }

    #[test]
    fn weights_and_deviation_flags() {
        let weights = parse_weights(Some("partitions=2, cpu_used=0")).unwrap();
        assert_eq!(weights["partitions"], 2.0);
        assert_eq!(weights["cpu_used"], 0.0);
        assert_eq!(weights["fd"], 1.0);
        assert!(parse_weights(Some("disk=2"))
            .unwrap_err()
            .starts_with("--weights: column \"disk\""));
        assert!(parse_weights(Some("partitions"))
            .unwrap_err()
            .contains("not metric=weight"));
        assert!(parse_weights(Some("partitions=-1"))
            .unwrap_err()
            .contains("not a number of 0 or more"));
        assert_eq!(parse_deviation("0.2"), Ok(0.2));
        assert!((parse_deviation("15%").unwrap() - 0.15).abs() < 1e-12);
        assert!(
            parse_deviation("0").is_err()
                && parse_deviation("150%").is_err()
                && parse_deviation("x").is_err()
        );
    }
}
