//! What the host's kernel log and the broker's own log say went wrong.

use super::*;

/// What a kind of kernel event is, and what to do about it.
fn kernel_kind(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "io_error" => ("disk I/O errors", "A failing disk or its path: check it (smartctl -a), and move the broker's log dirs off it."),
        "medium_error" => ("disk medium errors", "The disk has unreadable sectors: replace it before it fails the log dir."),
        "filesystem_error" => ("filesystem errors", "The filesystem may go read-only and take the log dir offline: check it, and the disk under it."),
        "hung_task" => ("hung tasks", "Processes blocked on I/O for minutes: a disk or a storage path hangs."),
        "soft_lockup" => ("CPU lockups", "A CPU stuck in the kernel: a driver or firmware problem; the broker stalls meanwhile."),
        "oom_kill" => ("OOM kills", "The kernel killed a process for memory: if it was the broker, it restarts; size the heap and the host's other services."),
        "link_down" => ("network links going down", "A NIC, cable or switch port: check the link (ethtool, the switch)."),
        "machine_check" => ("machine-check (hardware) errors", "The CPU or memory reports faults: have the hardware checked."),
        _ => ("kernel errors", "Look at the kernel log."),
    }
}

pub(super) fn kernel_errors(j: &mut Judge, inputs: &Inputs, b: &Subject) {
    // Per kind: each device's count over the window.
    let mut kinds: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
    for series in inputs.store.series_of(b.id) {
        let Series::Counter(Counter::KernelEvents(kind, device)) = series else {
            continue;
        };
        let count = inputs
            .store
            .increase(b.id, series, inputs.now)
            .map_or(0.0, |(n, _)| n);
        kinds.entry(kind).or_default().push((device, count));
    }
    let span = age(inputs.store.window_seconds());
    for (kind, devices) in kinds {
        let count: f64 = devices.iter().map(|(_, n)| n).sum();
        let named: Vec<String> = devices
            .iter()
            .filter(|(_, n)| *n > 0.0)
            .map(|(device, n)| match *device {
                "" => format!("{n:.0} naming no device"),
                device => format!("{n:.0} on {device}"),
            })
            .collect();
        let (what, advice) = kernel_kind(kind);
        j.judge(
            Alert::KafkaHostKernelErrors,
            &[&b.label, kind],
            count > 0.0,
            &[
                ("what", what.to_owned()),
                ("count", format!("{count:.0}")),
                ("span", span.clone()),
                ("devices", capitalised(&named.join(", "))),
                ("advice", advice.to_owned()),
            ],
        );
    }
}

pub(super) fn log_errors(j: &mut Judge, inputs: &Inputs, b: &Subject) {
    let Some(log) = &b.entry.latest.host.broker_log else {
        return;
    };
    let series = Series::Counter(Counter::LogLines);
    let store = inputs.store;
    let window = store.window_seconds();
    let Some((lines, span)) = store.increase(b.id, &series, inputs.now) else {
        return;
    };
    if span < LEAST_SPAN_SECONDS {
        return;
    }
    let per_minute = lines / span * 60.0;
    // The hour before the window, once there are ten minutes of it.
    let before = inputs.now - window;
    let baseline = store
        .increase_between(b.id, &series, before - 3600.0, before)
        .filter(|(_, span)| *span >= 600.0)
        .map(|(n, span)| n / span * 60.0);
    let surge = baseline.is_none_or(|base| per_minute > LOG_SURGE_FACTOR * base);
    let mut loggers: Vec<_> = log.errors.iter().collect();
    loggers.sort_by_key(|l| std::cmp::Reverse(l.errors_total + l.fatals_total));
    let loggers: Vec<String> = loggers
        .iter()
        .take(3)
        .map(|l| format!("{} ({})", l.logger, l.errors_total + l.fatals_total))
        .collect();
    j.judge(
        Alert::KafkaBrokerLogErrors,
        &[&b.label],
        per_minute > j.threshold(Alert::KafkaBrokerLogErrors) && surge,
        &[
            ("rate", format!("{per_minute:.0}")),
            ("lines", format!("{lines:.0}")),
            ("span", age(span)),
            (
                "baseline",
                baseline.map_or_else(|| "no figure".to_owned(), |b| format!("{b:.1}")),
            ),
            ("file", log.file.clone()),
            (
                "loggers",
                format!("most since the agent started: {}", loggers.join(", ")),
            ),
        ],
    );
}
