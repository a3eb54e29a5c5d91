//! `GET /`: the cluster at a glance, one server-rendered page (no script,
//! a few KB of inline CSS, inline SVG for the bars and sparklines, text
//! beside every mark so it reads without colour), refreshed every
//! evaluation. Every name is escaped: topics, groups and hosts are the
//! users' input. Long lists are bounded: the items that matter most, and a
//! count of the rest.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Evaluation;
use crate::alerts::notify::rfc3339;
use crate::alerts::state::{Alert, Phase};
use crate::config::Config;
use crate::model::lag::Status;
use crate::model::load::{GroupLoad, MemberLoad};

/// The most of each list the page shows.
const MOST_ALERTS: usize = 100;
const MOST_BROKERS: usize = 30;
const MOST_DISK_BROKERS: usize = 20;
const MOST_GROUPS: usize = 50;
const MOST_AGENTS: usize = 50;

/// One agent's freshness, as intake knows it.
pub struct AgentRow {
    pub broker: i32,
    pub last_report: f64,
    pub fresh: bool,
}

/// What the page shows: the latest evaluation (none before the first).
pub struct PageInput<'a> {
    pub config: &'a Config,
    pub evaluation: Option<&'a Evaluation>,
    pub agents: &'a [AgentRow],
    pub now: f64,
}

/// Text made safe for HTML, in content and in attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#111}\
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.15em;margin:1.4em 0 .4em;border-bottom:1px solid #ccc}\
h3{font-size:1em;margin:.8em 0 .2em}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:top}\
tr:nth-child(even){background:#f4f4f4}.critical{font-weight:bold}.warn{color:#8a4b00}.bad{color:#a00;font-weight:bold}\
.ok{color:#060}.muted{color:#666}a{color:#0645ad}svg text{font:11px sans-serif}";

/// The whole page.
pub fn render(input: &PageInput) -> String {
    let config = input.config;
    let mut out = String::with_capacity(16 * 1024);
    let refresh = config.evaluation_interval.as_secs().max(2);
    let cluster = escape(&config.cluster);
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta http-equiv=refresh content={refresh}>\
         <link rel=icon href=\"data:,\"><title>brokerwatch · {cluster}</title><style>{STYLE}</style></head><body>\
         <h1>brokerwatch · cluster {cluster}</h1>"
    );
    let Some(evaluation) = input.evaluation else {
        out.push_str("<p>No evaluation yet: the first comes one evaluation interval after start.</p></body></html>");
        return out;
    };
    let _ = write!(
        out,
        "<p class=muted>Evaluated {} · refreshes every {refresh} s · <a href=\"/api/v1/load\">load</a> · \
         <a href=\"/api/v1/alerts\">alerts</a> · <a href=\"/api/v1/replication\">replication</a> · \
         <a href=\"/api/v1/consumergroups\">consumer groups</a> · <a href=\"/api/v1/brokers\">agents</a> · \
         <a href=\"/metrics\">metrics</a></p>",
        rfc3339(evaluation.at)
    );
    alerts(&mut out, evaluation, input.now);
    load(&mut out, config, evaluation);
    replication(&mut out, config, evaluation);
    groups(&mut out, evaluation);
    agents(&mut out, input);
    out.push_str("</body></html>");
    out
}

/// `3m 20s`: how long ago, or how long.
fn ago(seconds: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(seconds.max(0.0) as u64)).to_string()
}

/// "and N more", where a list was cut.
fn more(out: &mut String, shown: usize, total: usize, what: &str, link: &str) {
    if total > shown {
        let _ = write!(
            out,
            "<p class=muted>and {} more {what}: <a href=\"{link}\">{link}</a></p>",
            total - shown
        );
    }
}

fn alerts(out: &mut String, evaluation: &Evaluation, now: f64) {
    let mut alerts: Vec<&Alert> = evaluation.alerts.alerts.values().collect();
    let rank = |a: &Alert| {
        let phase = match a.phase {
            Phase::Firing => 0,
            Phase::Pending => 1,
            Phase::Resolved => 2,
        };
        let critical = a.labels.get("severity").is_some_and(|s| s == "critical");
        (phase, !critical)
    };
    alerts.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then(a.active_since.total_cmp(&b.active_since))
    });
    let count = |phase| alerts.iter().filter(|a| a.phase == phase).count();
    let _ = write!(
        out,
        "<h2 id=alerts><a href=\"/api/v1/alerts\">Alerts</a>: {} firing, {} pending, {} resolved lately</h2>",
        count(Phase::Firing),
        count(Phase::Pending),
        count(Phase::Resolved)
    );
    if alerts.is_empty() {
        out.push_str("<p class=ok>None.</p>");
        return;
    }
    out.push_str("<table><tr><th>state</th><th>severity</th><th>alert</th><th>subject</th><th>summary</th><th>since</th></tr>");
    for alert in alerts.iter().take(MOST_ALERTS) {
        let label = |k: &str| alert.labels.get(k).map_or("", String::as_str);
        let subject: Vec<String> = alert
            .labels
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "cluster" | "severity"))
            .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
            .collect();
        let (state, since) = match alert.phase {
            Phase::Firing => ("FIRING", alert.starts_at.unwrap_or(alert.active_since)),
            Phase::Pending => ("pending", alert.active_since),
            Phase::Resolved => ("resolved", alert.ends_at.unwrap_or(alert.active_since)),
        };
        let class = match (alert.phase, label("severity")) {
            (Phase::Firing, "critical") => "bad",
            (Phase::Firing, _) => "warn",
            _ => "muted",
        };
        let _ = write!(
            out,
            "<tr class={class}><td>{state}</td><td>{}</td><td><a href=\"/api/v1/alerts\">{}</a></td><td>{}</td><td>{}</td><td>{} ago</td></tr>",
            escape(label("severity")),
            escape(label("alertname")),
            subject.join(" "),
            escape(alert.annotations.get("summary").map_or("", String::as_str)),
            ago(now - since)
        );
    }
    out.push_str("</table>");
    more(out, MOST_ALERTS, alerts.len(), "alerts", "/api/v1/alerts");
}

/// One bar per member: its share against the mean and the ±r band, with
/// the figures as text.
fn bars<K: std::fmt::Display>(
    out: &mut String,
    members: &[&MemberLoad<K>],
    n: usize,
    r: f64,
    label: &str,
) {
    const WIDTH: f64 = 320.0;
    const ROW: f64 = 18.0;
    let mean = 1.0 / n as f64;
    let most = members
        .iter()
        .map(|m| m.share)
        .fold(mean * (1.0 + r), f64::max);
    let x = |share: f64| share / most * WIDTH;
    let height = ROW * members.len() as f64 + 4.0;
    let _ = write!(
        out,
        "<svg width=\"{}\" height=\"{height}\" role=img aria-label=\"shares against the mean of {:.1}% and the ±{:.0}% band\">\
         <rect x=\"{:.1}\" y=\"0\" width=\"{:.1}\" height=\"{height}\" fill=\"#e8e8e8\"/>\
         <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"0\" y2=\"{height}\" stroke=\"#555\" stroke-dasharray=\"3 2\"/>",
        WIDTH + 260.0,
        mean * 100.0,
        r * 100.0,
        x(mean * (1.0 - r)),
        x(mean * (1.0 + r)) - x(mean * (1.0 - r)),
        x(mean),
        x(mean),
    );
    for (i, m) in members.iter().enumerate() {
        let y = ROW * i as f64 + 2.0;
        let beyond = m.deviation.abs() > r;
        let verdict = match (beyond, m.deviation > 0.0) {
            (false, _) => "",
            (true, true) => " over",
            (true, false) => " under",
        };
        let _ = write!(
            out,
            "<rect x=\"0\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{:.1}\">{label} {} {:.1}% {:+.1}%{verdict}</text>",
            x(m.share),
            ROW - 4.0,
            if beyond { "#b54" } else { "#579" },
            WIDTH + 6.0,
            y + ROW - 6.0,
            escape(&m.member.to_string()),
            m.share * 100.0,
            m.deviation * 100.0
        );
    }
    out.push_str("</svg>");
}

/// The members to draw: all of a small group, else the most deviating.
fn shown<K>(group: &GroupLoad<K>, most: usize) -> Vec<&MemberLoad<K>> {
    let mut members: Vec<&MemberLoad<K>> = group.members.iter().collect();
    if members.len() > most {
        members.sort_by(|a, b| b.deviation.abs().total_cmp(&a.deviation.abs()));
        members.truncate(most);
    }
    members.sort_by(|a, b| b.share.total_cmp(&a.share));
    members
}

fn load(out: &mut String, config: &Config, evaluation: &Evaluation) {
    out.push_str("<h2 id=load><a href=\"/api/v1/load\">Load</a></h2>");
    if evaluation.load.groups.is_empty() {
        out.push_str("<p class=muted>No broker has reported yet.</p>");
    }
    for (group, missing) in &evaluation.load.groups {
        let n = group.members.len();
        let verdict = if group.balanced {
            "<span class=ok>balanced</span>"
        } else {
            "<span class=bad>IMBALANCED</span>"
        };
        let _ = write!(
            out,
            "<h3>Group <a href=\"/api/v1/load\">{}</a>: {n} brokers, σ {:.4} against r/N = {:.4}: {verdict}</h3><p class=muted>metrics: {}</p>",
            escape(&group.group),
            group.stddev,
            group.stddev_limit,
            group.metrics.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
        );
        if n > 0 {
            let members = shown(group, MOST_BROKERS);
            bars(out, &members, n, config.deviation, "broker");
            more(
                out,
                members.len(),
                n,
                "brokers, nearer the mean",
                "/api/v1/load",
            );
        }
        if !missing.is_empty() {
            let _ = write!(
                out,
                "<p class=warn>Without a fresh report, left out: brokers {}</p>",
                missing
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let deviating: Vec<(&i32, &GroupLoad<String>)> = evaluation
        .load
        .disks
        .iter()
        .filter(|(_, d)| d.deviating(config.disk_deviation).next().is_some())
        .collect();
    if !deviating.is_empty() {
        let _ = write!(
            out,
            "<h3>Disks inside brokers, where they deviate ({})</h3>",
            deviating.len()
        );
        for (broker, disks) in deviating.iter().take(MOST_DISK_BROKERS) {
            let _ = write!(
                out,
                "<p>Broker {broker}: σ {:.4} against {:.4}</p>",
                disks.stddev, disks.stddev_limit
            );
            bars(
                out,
                &shown(disks, MOST_BROKERS),
                disks.members.len(),
                config.disk_deviation,
                "disk",
            );
        }
        more(
            out,
            MOST_DISK_BROKERS,
            deviating.len(),
            "brokers with deviating disks",
            "/metrics",
        );
    }
}

fn replication(out: &mut String, config: &Config, evaluation: &Evaluation) {
    out.push_str("<h2 id=replication><a href=\"/api/v1/replication\">Replication</a></h2>");
    let cluster = &evaluation.cluster;
    if config.kafka.is_none() {
        out.push_str("<p class=muted>No [kafka] section: the cluster's own state is not read.</p>");
        return;
    }
    if let Some(error) = &cluster.error {
        let _ = write!(
            out,
            "<p class=bad>The cluster does not answer: {}</p>",
            escape(error)
        );
    }
    let Some(metadata) = &cluster.metadata else {
        out.push_str("<p class=muted>No metadata yet.</p>");
        return;
    };
    let facts = &metadata.facts;
    let stale = evaluation.fresh_replication(config).is_none();
    let count = |n: u64| {
        if n > 0 {
            format!("<span class=bad>{n}</span>")
        } else {
            format!("<span class=ok>{n}</span>")
        }
    };
    let _ = write!(
        out,
        "<p>{} partitions on {} brokers; metadata {} old{}.</p><table>\
         <tr><td>under-replicated</td><td>{}</td><td class=muted>{} of them a reassignment's catch-up</td></tr>\
         <tr><td>offline</td><td>{}</td><td></td></tr>\
         <tr><td>under min ISR</td><td>{}</td><td></td></tr>\
         <tr><td>brokers down</td><td>{}</td><td>{}</td></tr>\
         <tr><td>suspects</td><td colspan=2>{}</td></tr></table>",
        facts.partitions,
        facts.brokers.len(),
        ago(evaluation.at - metadata.at),
        if stale { " <span class=bad>(stale: alerts wait)</span>" } else { "" },
        count(facts.under_replicated),
        facts.diagnosis.reassigning,
        count(facts.offline),
        facts.under_min_isr.map_or_else(|| "unknown".to_owned(), count),
        count(facts.brokers_down.len() as u64),
        facts.brokers_down.iter().map(i32::to_string).collect::<Vec<_>>().join(", "),
        if facts.diagnosis.suspects.is_empty() {
            "none".to_owned()
        } else {
            facts
                .diagnosis
                .suspects
                .iter()
                .map(|(b, n)| format!("broker {b} (missing from {n})"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
}

/// A sparkline of a group's lag over its last rounds.
fn sparkline(values: &[i64]) -> String {
    const WIDTH: f64 = 120.0;
    const HEIGHT: f64 = 18.0;
    if values.len() < 2 {
        return String::new();
    }
    let top = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = WIDTH / (values.len() - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                HEIGHT - *v as f64 / top * (HEIGHT - 2.0) - 1.0
            )
        })
        .collect();
    format!(
        "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" role=img aria-label=\"lag over the last {} rounds, up to {}\"><polyline fill=none stroke=\"#333\" points=\"{}\"/></svg>",
        values.len(),
        top,
        points.join(" ")
    )
}

fn groups(out: &mut String, evaluation: &Evaluation) {
    let mut groups: Vec<_> = evaluation.groups.iter().collect();
    let _ = write!(
        out,
        "<h2 id=groups><a href=\"/api/v1/consumergroups\">Consumer groups</a>: {}</h2>",
        groups.len()
    );
    if groups.is_empty() {
        out.push_str("<p class=muted>None watched, or their offsets are not fresh.</p>");
        return;
    }
    groups.sort_by(|a, b| {
        b.status
            .cmp(&a.status)
            .then(b.lag_messages.cmp(&a.lag_messages))
    });
    let history = evaluation.cluster.groups.as_ref().map(|g| &g.history);
    let empty = BTreeMap::new();
    let history = history.map_or(&empty, |h| &**h);
    out.push_str("<table><tr><th>group</th><th>status</th><th>lag (messages)</th><th>behind</th><th>lag over the last rounds</th></tr>");
    for group in groups.iter().take(MOST_GROUPS) {
        let class = match group.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            _ => "bad",
        };
        let _ = write!(
            out,
            "<tr><td><a href=\"/api/v1/consumergroups\">{}</a></td><td class={class}>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&group.group),
            group.status.as_str(),
            group.lag_messages,
            group.lag_seconds.map_or_else(|| "unknown".to_owned(), ago),
            sparkline(history.get(&group.group).map_or(&[][..], Vec::as_slice))
        );
    }
    out.push_str("</table>");
    more(
        out,
        MOST_GROUPS,
        groups.len(),
        "groups",
        "/api/v1/consumergroups",
    );
}

fn agents(out: &mut String, input: &PageInput) {
    let mut agents: Vec<&AgentRow> = input.agents.iter().collect();
    let silent = agents.iter().filter(|a| !a.fresh).count();
    let _ = write!(
        out,
        "<h2 id=agents><a href=\"/api/v1/brokers\">Agents</a>: {} reporting, {silent} silent</h2>",
        agents.len() - silent
    );
    agents.sort_by(|a, b| {
        a.fresh
            .cmp(&b.fresh)
            .then(a.last_report.total_cmp(&b.last_report))
    });
    out.push_str("<table><tr><th>broker</th><th>last report</th><th></th></tr>");
    for agent in agents.iter().take(MOST_AGENTS) {
        let _ = write!(
            out,
            "<tr><td><a href=\"/api/v1/brokers\">{}</a></td><td>{} ago</td><td class={}>{}</td></tr>",
            agent.broker,
            ago(input.now - agent.last_report),
            if agent.fresh { "ok" } else { "bad" },
            if agent.fresh { "fresh" } else { "SILENT" }
        );
    }
    out.push_str("</table>");
    more(
        out,
        MOST_AGENTS,
        agents.len(),
        "agents, reporting",
        "/api/v1/brokers",
    );
}

#[cfg(test)]
mod tests;
