use super::*;

#[test]
fn every_alert_has_one_spec_and_names_are_unique() {
    for (i, spec) in CATALOGUE.iter().enumerate() {
        assert_eq!(spec.alert.spec().name, spec.name);
        assert_eq!(Alert::from_name(spec.name), Some(spec.alert));
        assert!(
            CATALOGUE[..i]
                .iter()
                .all(|s| s.alert != spec.alert && s.name != spec.name),
            "{} twice",
            spec.name
        );
        assert_eq!(format!("{:?}", spec.alert), spec.name);
    }
    assert_eq!(Alert::from_name("KafkaDiskFull"), None);
}

#[test]
fn templates_fill_in_known_names_only() {
    assert_eq!(
        render(
            "Broker {broker} at {share}",
            &[("broker", "3"), ("share", "40%")]
        ),
        "Broker 3 at 40%"
    );
    assert_eq!(render("{unknown} {b", &[("b", "x")]), "{unknown} {b");
    assert_eq!(render("a {{ $value }}", &[]), "a {{ $value }}");
}

#[test]
fn durations_are_written_as_operators_do() {
    assert_eq!(format_for(600), "10m");
    assert_eq!(format_for(90), "90s");
    assert_eq!(format_for(7200), "2h");
    assert_eq!(format_for(0), "0s");
}

/// The repository's Prometheus rules are the catalogue's: any drift of
/// name, `for`, severity, threshold, expression or wording fails here.
/// Regenerate with `brokerwatch-collector rules > rules/brokerwatch.alerts.yml`.
#[test]
fn the_prometheus_rule_file_is_the_catalogues() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/brokerwatch.alerts.yml");
    let file = std::fs::read_to_string(&path).unwrap();
    assert!(
        file == prometheus_rules(),
        "{} is not what the catalogue gives: run `cargo run -p brokerwatch-collector -- rules > rules/brokerwatch.alerts.yml`",
        path.display()
    );
}

#[test]
fn the_readme_tables_and_the_example_config_are_the_catalogues() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // Tables may sit indented in a list item.
    let readme: String = std::fs::read_to_string(root.join("../README.md"))
        .unwrap()
        .lines()
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    for origin in [Origin::Agents, Origin::Cluster] {
        let table = readme_table(origin);
        assert!(
            readme.contains(&table),
            "README.md lacks the catalogue's {origin:?} table:\n{table}"
        );
    }
    let example = std::fs::read_to_string(root.join("brokerwatch-collector.example.toml")).unwrap();
    assert!(
        example.contains(&example_rules_comment()),
        "the example config lacks the catalogue's rule list:\n{}",
        example_rules_comment()
    );
}

/// `render` fills `{name}` of lowercase letters and `_` only: a placeholder
/// with a digit or a capital (`{p99}`) would reach the operator unfilled.
#[test]
fn every_placeholder_is_one_render_fills() {
    for spec in &CATALOGUE {
        for template in [spec.summary, spec.description] {
            let mut rest = template;
            while let Some(open) = rest.find('{') {
                let after = &rest[open + 1..];
                let close = after
                    .find('}')
                    .unwrap_or_else(|| panic!("{}: unclosed {{", spec.name));
                let name = &after[..close];
                assert!(
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{}: {{{name}}} is never filled",
                    spec.name
                );
                rest = &after[close + 1..];
            }
        }
    }
}
