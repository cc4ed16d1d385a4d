//! The timeline as one self-contained HTML page: the SVG is drawn here,
//! so the page shows (and its DOM holds) every mark before any script
//! runs; a small inline script adds zoom and pan on the time axis, hover
//! details and the filter. No network, no fonts or libraries fetched.
//!
//! Time-placed shapes live in an inner `<svg>` whose viewBox is in
//! simulated milliseconds and which stretches freely
//! (`preserveAspectRatio="none"`): zooming rewrites one viewBox instead of
//! every element. Nothing stretched holds text, and lines keep their
//! width (`vector-effect: non-scaling-stroke`), so zoom distorts nothing.

use std::fmt::Write;

use sim::NodeId;

use super::{BELIEF_ROWS, REQUEST_ROWS, RequestEnd, Timeline};

/// Width of the lane names' column, in pixels.
const LABEL_W: u64 = 170;
/// Width of the plot at the default zoom, in pixels.
const PLOT_W: u64 = 1400;
/// Height of the time axis above the plot.
const AXIS_H: u64 = 28;
/// Height of a node's lane.
const LANE_H: u64 = 24;
/// Height of a lease's row.
const LEASE_H: u64 = 20;
/// Height of a section's heading row.
const HEADING_H: u64 = 22;
/// Height of the desired-against-observed curve.
const CURVE_H: u64 = 100;

/// Where each row of the picture sits, top to bottom, in plot pixels.
struct Rows {
    /// Top of each node's lane, by node index.
    node_top: Vec<u64>,
    /// Top of each lease row, in [`Timeline::leases`] order.
    lease_top: Vec<u64>,
    /// Top of the curve.
    curve_top: u64,
    /// Top of each section heading, with its text.
    headings: Vec<(u64, &'static str)>,
    /// The plot's height.
    height: u64,
}

impl Rows {
    fn of(timeline: &Timeline) -> Rows {
        let mut y = 0;
        let mut headings = vec![(y, "nodes")];
        y += HEADING_H;
        let node_top: Vec<u64> = (0..timeline.nodes.len() as u64)
            .map(|i| y + i * LANE_H)
            .collect();
        y += timeline.nodes.len() as u64 * LANE_H;
        headings.push((
            y,
            "leases: terms as the store wrote them (colour: holder), beliefs below",
        ));
        y += HEADING_H;
        let lease_top: Vec<u64> = (0..timeline.leases.len() as u64)
            .map(|i| y + i * LEASE_H)
            .collect();
        y += timeline.leases.len() as u64 * LEASE_H;
        headings.push((y, "desired vs running"));
        y += HEADING_H;
        let curve_top = y;
        y += CURVE_H;
        Rows {
            node_top,
            lease_top,
            curve_top,
            headings,
            height: y,
        }
    }
}

/// HTML-escapes `text` for element content and quoted attributes.
pub(crate) fn escape(text: &str) -> String {
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

/// Nanoseconds as the plot's unit, milliseconds to the microsecond.
fn ms(ns: u64) -> String {
    let us = ns / 1_000;
    format!("{}.{:03}", us / 1_000, us % 1_000)
}

/// Nanoseconds as seconds to the microsecond, for people.
fn secs(ns: u64) -> String {
    let us = ns / 1_000;
    format!("{}.{:06} s", us / 1_000_000, us % 1_000_000)
}

/// A node's colour: distinct hues, fixed by its index.
fn colour(node: NodeId) -> String {
    format!("hsl({},62%,48%)", (u64::from(node.0) * 67 + 200) % 360)
}

/// Renders `timeline` as one self-contained HTML page. The same timeline
/// gives the same bytes: nothing in it depends on when or where it ran.
pub fn html(timeline: &Timeline) -> String {
    let rows = Rows::of(timeline);
    // A mark narrower than a pixel at the default zoom is drawn one pixel
    // wide, so nothing short disappears; its tooltip keeps the true times.
    let end_ns = timeline.end_ns.max(1);
    let min_w_ns = end_ns.div_ceil(PLOT_W);
    let mut out = String::with_capacity(256 * 1024);
    let title = escape(&timeline.title.replace('`', ""));
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n\
         <body data-ready=\"0\" data-script-errors=\"\">\n<header>\n<h1>{title}</h1>"
    );
    controls(&mut out, timeline);
    legend(&mut out);
    out.push_str("</header>\n");
    let total_h = AXIS_H + rows.height;
    let _ = writeln!(
        out,
        "<div id=\"frame\"><svg id=\"tl\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{total_h}\" \
         data-end-ms=\"{}\" data-plot-w=\"{PLOT_W}\" data-label-w=\"{LABEL_W}\">",
        LABEL_W + PLOT_W,
        ms(end_ns)
    );
    labels(&mut out, timeline, &rows);
    axis(&mut out, timeline, end_ns);
    let _ = writeln!(
        out,
        "<svg id=\"plot\" x=\"{LABEL_W}\" y=\"{AXIS_H}\" width=\"{PLOT_W}\" height=\"{h}\" \
         viewBox=\"0 0 {} {h}\" preserveAspectRatio=\"none\">",
        ms(end_ns),
        h = rows.height
    );
    bands(&mut out, timeline, &rows, end_ns);
    faults(&mut out, timeline, &rows, min_w_ns);
    requests(&mut out, timeline, &rows, min_w_ns);
    leases(&mut out, timeline, &rows, min_w_ns);
    marks(&mut out, timeline, &rows);
    curve(&mut out, timeline, &rows, end_ns);
    violations(&mut out, timeline, &rows);
    out.push_str("</svg>\n</svg></div>\n");
    out.push_str("<div id=\"details\">Hover over a mark for its details; wheel or the buttons zoom, drag pans; a link may end in #t=5-9.5&amp;filter=n:store.</div>\n");
    lists(&mut out, timeline);
    let _ = writeln!(out, "<script>{SCRIPT}</script>\n</body>\n</html>");
    out
}

fn controls(out: &mut String, timeline: &Timeline) {
    out.push_str(
        "<div id=\"controls\"><button id=\"zoom-in\" type=\"button\">zoom in</button> \
         <button id=\"zoom-out\" type=\"button\">zoom out</button> \
         <button id=\"zoom-reset\" type=\"button\">whole run</button> \
         <label>show only <select id=\"filter\"><option value=\"\">everything</option>\n",
    );
    out.push_str("<optgroup label=\"nodes\">");
    for name in &timeline.nodes {
        let name = escape(name);
        let _ = write!(out, "<option value=\"n:{name}\">{name}</option>");
    }
    out.push_str("</optgroup>\n<optgroup label=\"shards\">");
    for row in &timeline.leases {
        let key = row.shard.map_or("leader".to_string(), |s| s.to_string());
        let _ = write!(
            out,
            "<option value=\"s:{key}\">{}</option>",
            escape(&row.name)
        );
    }
    out.push_str("</optgroup>\n<optgroup label=\"resources\">");
    for id in &timeline.resources {
        let id = escape(id);
        let _ = write!(out, "<option value=\"r:{id}\">{id}</option>");
    }
    out.push_str("</optgroup></select></label> <span id=\"range\"></span></div>\n");
}

fn legend(out: &mut String) {
    out.push_str("<div id=\"legend\">");
    let items = [
        ("req ok", "request answered 2xx"),
        ("req client-error", "4xx"),
        ("req server-error", "503"),
        ("req no-answer", "no answer (timed out)"),
        ("req abandoned", "abandoned"),
        ("fault k-partition", "partition"),
        ("fault k-clog", "clog"),
        ("fault k-crash", "crash / reboot"),
        ("fault k-pause", "pause"),
        ("fault k-clock", "clock jump / drift"),
        ("fault k-degrade", "degraded links"),
    ];
    for (class, text) in items {
        let _ = write!(
            out,
            "<span class=\"item\"><svg width=\"14\" height=\"10\"><rect class=\"{class}\" width=\"14\" height=\"10\"/></svg>{text}</span>"
        );
    }
    let ticks = [
        ("mk charge", "charge"),
        ("mk start", "instance started"),
        ("mk stop", "instance stopped"),
        ("mk rejected", "stale token rejected"),
        ("mk acquired", "lease acquired"),
        ("mk replay", "replay"),
        ("mk conflict", "409/422"),
        ("mk takeover", "takeover"),
        ("vline", "violation"),
        ("healed", "faults healed, liveness phase"),
    ];
    for (class, text) in ticks {
        let _ = write!(
            out,
            "<span class=\"item\"><svg width=\"6\" height=\"12\"><line class=\"{class}\" x1=\"3\" x2=\"3\" y1=\"0\" y2=\"12\"/></svg>{text}</span>"
        );
    }
    out.push_str("</div>\n");
}

fn labels(out: &mut String, timeline: &Timeline, rows: &Rows) {
    out.push_str("<g id=\"labels\">\n");
    let width = LABEL_W + PLOT_W;
    for &(top, text) in &rows.headings {
        let y = AXIS_H + top;
        let _ = writeln!(
            out,
            "<rect class=\"heading\" x=\"0\" y=\"{y}\" width=\"{width}\" height=\"{HEADING_H}\"/>\
             <text class=\"heading\" x=\"6\" y=\"{}\">{}</text>",
            y + 15,
            escape(text)
        );
    }
    // Lease holders: the colour key of the lease rows beside each name.
    let holders: std::collections::BTreeSet<NodeId> = timeline
        .leases
        .iter()
        .flat_map(|row| row.terms.iter().map(|term| term.holder))
        .chain(
            timeline
                .leases
                .iter()
                .flat_map(|row| row.beliefs.iter().map(|belief| belief.node)),
        )
        .collect();
    for (index, name) in timeline.nodes.iter().enumerate() {
        let y = AXIS_H + rows.node_top[index];
        let _ = writeln!(
            out,
            "<text class=\"lane\" data-k=\"n:{n}\" x=\"10\" y=\"{}\">{n}</text>",
            y + 16,
            n = escape(name)
        );
        let node = NodeId(index as u32);
        if holders.contains(&node) {
            let _ = writeln!(
                out,
                "<rect class=\"chip\" x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"><title>{} in the lease rows</title></rect>",
                LABEL_W - 20,
                y + 6,
                colour(node),
                escape(name)
            );
        }
    }
    for (index, row) in timeline.leases.iter().enumerate() {
        let y = AXIS_H + rows.lease_top[index];
        let key = row.shard.map_or("leader".to_string(), |s| s.to_string());
        let _ = writeln!(
            out,
            "<text class=\"lane\" data-k=\"s:{key}\" x=\"10\" y=\"{}\">{}</text>",
            y + 14,
            escape(&row.name)
        );
    }
    let y = AXIS_H + rows.curve_top;
    let max = curve_max(timeline);
    let _ = writeln!(
        out,
        "<text class=\"curve-label desired\" x=\"10\" y=\"{}\">desired replicas</text>\
         <text class=\"curve-label running\" x=\"10\" y=\"{}\">running instances</text>\
         <text class=\"curve-label current\" x=\"10\" y=\"{}\">running, current gen</text>\
         <text class=\"lane\" x=\"10\" y=\"{}\">scale 0..{max}</text>\n</g>",
        y + 16,
        y + 34,
        y + 52,
        y + 90
    );
}

fn axis(out: &mut String, timeline: &Timeline, end_ns: u64) {
    // The ticks drawn for the whole run; the script redraws them on zoom.
    let _ = write!(
        out,
        "<g id=\"axis\" transform=\"translate({LABEL_W},0)\"><rect class=\"axis-bg\" x=\"0\" y=\"0\" width=\"{PLOT_W}\" height=\"{AXIS_H}\"/><g id=\"ticks\">"
    );
    let step_s = match end_ns / 1_000_000_000 {
        0..=10 => 1,
        11..=30 => 2,
        31..=80 => 5,
        81..=200 => 10,
        _ => 30,
    };
    let mut t_s = 0;
    while t_s * 1_000_000_000 <= end_ns {
        let x = t_s * 1_000_000_000 * PLOT_W / end_ns;
        let _ = write!(
            out,
            "<line class=\"tick\" x1=\"{x}\" x2=\"{x}\" y1=\"18\" y2=\"{AXIS_H}\"/><text class=\"tick\" x=\"{}\" y=\"14\">{t_s} s</text>",
            x + 2
        );
        t_s += step_s;
    }
    out.push_str("</g>");
    for (index, violation) in timeline.violations.iter().enumerate() {
        let x = violation.time_ns.min(end_ns) * PLOT_W / end_ns;
        let _ = write!(
            out,
            "<path class=\"flag\" data-t=\"{}\" data-target=\"violation-{index}\" d=\"M{x},{AXIS_H} l-6,-10 h12 z\"><title>{}</title></path>",
            ms(violation.time_ns),
            escape(&format!(
                "{} at {}",
                violation.property,
                secs(violation.time_ns)
            ))
        );
    }
    out.push_str("</g>\n");
}

fn bands(out: &mut String, timeline: &Timeline, rows: &Rows, end_ns: u64) {
    out.push_str("<g id=\"bands\">");
    let width = ms(end_ns);
    for (index, top) in rows.node_top.iter().enumerate() {
        let _ = write!(
            out,
            "<rect class=\"band{}\" x=\"0\" y=\"{top}\" width=\"{width}\" height=\"{LANE_H}\"/>",
            if index % 2 == 1 { " odd" } else { "" }
        );
    }
    for (index, top) in rows.lease_top.iter().enumerate() {
        let _ = write!(
            out,
            "<rect class=\"band{}\" x=\"0\" y=\"{top}\" width=\"{width}\" height=\"{LEASE_H}\"/>",
            if index % 2 == 1 { " odd" } else { "" }
        );
    }
    if let Some(healed) = timeline.healed_ns {
        let _ = write!(
            out,
            "<line class=\"healed\" x1=\"{x}\" x2=\"{x}\" y1=\"0\" y2=\"{}\"><title>safety phase over and every fault healed at {}: the liveness phase runs from here on a calm network</title></line>",
            rows.height,
            secs(healed),
            x = ms(healed)
        );
    }
    out.push_str("</g>\n");
}

/// A fault kind's style class: kinds that look alike share one.
fn fault_class(kind: &str) -> &'static str {
    match kind {
        "partition" | "partition_one_way" => "k-partition",
        "clog" => "k-clog",
        "crash" | "reboot" => "k-crash",
        "pause" => "k-pause",
        "clock_jump" | "clock_drift" => "k-clock",
        _ => "k-degrade",
    }
}

fn node_keys(timeline: &Timeline, nodes: &[NodeId]) -> String {
    let keys: Vec<String> = nodes
        .iter()
        .map(|&node| format!("n:{}", escape(timeline.name(node))))
        .collect();
    keys.join(" ")
}

fn faults(out: &mut String, timeline: &Timeline, rows: &Rows, min_w_ns: u64) {
    out.push_str("<g id=\"faults\">\n");
    for fault in &timeline.faults {
        let tip = escape(&format!(
            "{} at {}: {}",
            fault.kind,
            secs(fault.start_ns),
            fault.label
        ));
        let _ = write!(
            out,
            "<g class=\"fault m {}\" data-k=\"{}\"><title>{tip}</title>",
            fault_class(fault.kind),
            node_keys(timeline, &fault.nodes)
        );
        for node in &fault.nodes {
            let Some(&top) = rows.node_top.get(node.index()) else {
                continue;
            };
            if fault.kind == "clock_jump" {
                let _ = write!(
                    out,
                    "<line class=\"jump\" x1=\"{x}\" x2=\"{x}\" y1=\"{top}\" y2=\"{}\"/>",
                    top + LANE_H,
                    x = ms(fault.start_ns)
                );
            } else {
                let width = (fault.end_ns - fault.start_ns).max(min_w_ns);
                let _ = write!(
                    out,
                    "<rect x=\"{}\" y=\"{top}\" width=\"{}\" height=\"{LANE_H}\"/>",
                    ms(fault.start_ns),
                    ms(width)
                );
            }
        }
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n");
}

fn requests(out: &mut String, timeline: &Timeline, rows: &Rows, min_w_ns: u64) {
    out.push_str("<g id=\"requests\">\n");
    let row_h = (LANE_H - 4) / REQUEST_ROWS as u64;
    for request in &timeline.requests {
        let Some(&top) = rows.node_top.get(request.client.index()) else {
            continue;
        };
        let (class, outcome) = match request.end {
            RequestEnd::Answered { status, replayed } => (
                match status {
                    200..=299 => "ok",
                    500..=599 => "server-error",
                    _ => "client-error",
                },
                format!(
                    "answered {status}{}",
                    if replayed { " (replayed)" } else { "" }
                ),
            ),
            RequestEnd::NoAnswer => ("no-answer", "no answer".to_string()),
            RequestEnd::Abandoned => ("abandoned", "no answer; abandoned".to_string()),
        };
        let mut keys = format!(
            "n:{} n:{}",
            escape(timeline.name(request.client)),
            escape(timeline.name(request.api))
        );
        if let Some(resource) = &request.resource {
            let _ = write!(
                keys,
                " r:{} s:{}",
                escape(resource),
                timeline.shard_of(resource)
            );
        }
        let tip = format!(
            "{} {}{} to {}, attempt {}{}: sent {}, {} at {} ({} ms)",
            timeline.name(request.client),
            request.op,
            request
                .resource
                .as_ref()
                .map_or(String::new(), |r| format!(" {r}")),
            timeline.name(request.api),
            request.attempt,
            request
                .key
                .as_ref()
                .map_or(String::new(), |k| format!(", key {k}")),
            secs(request.start_ns),
            outcome,
            secs(request.end_ns),
            (request.end_ns - request.start_ns) / 1_000_000
        );
        // Two pixels at least: most requests take tens of milliseconds.
        let width = (request.end_ns - request.start_ns).max(2 * min_w_ns);
        let _ = writeln!(
            out,
            "<rect class=\"req m {class}{}\" data-k=\"{keys}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}</title></rect>",
            if request.attempt > 0 { " retry" } else { "" },
            ms(request.start_ns),
            top + 2 + request.row as u64 * row_h,
            ms(width),
            row_h - 1,
            escape(&tip)
        );
    }
    out.push_str("</g>\n");
}

fn leases(out: &mut String, timeline: &Timeline, rows: &Rows, min_w_ns: u64) {
    out.push_str("<g id=\"leases\">\n");
    let belief_h = (LEASE_H - 11) / BELIEF_ROWS as u64;
    for (index, row) in timeline.leases.iter().enumerate() {
        let top = rows.lease_top[index];
        let shard_key = row.shard.map_or("leader".to_string(), |s| s.to_string());
        for term in &row.terms {
            let holder = timeline.name(term.holder);
            let tip = format!(
                "{}: {holder} holds token {} from {} to {}",
                row.name,
                term.token,
                secs(term.start_ns),
                secs(term.end_ns)
            );
            let _ = writeln!(
                out,
                "<rect class=\"term m\" data-k=\"s:{shard_key} n:{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"8\" fill=\"{}\"><title>{}</title></rect>",
                escape(holder),
                ms(term.start_ns),
                top + 2,
                ms((term.end_ns - term.start_ns).max(min_w_ns)),
                colour(term.holder),
                escape(&tip)
            );
        }
        for belief in &row.beliefs {
            let node = timeline.name(belief.node);
            let tip = format!(
                "{node} believed it held {} with token {} from {} to {}{}",
                row.name,
                belief.token,
                secs(belief.start_ns),
                secs(belief.end_ns),
                belief
                    .reason
                    .map_or(" (never said it stopped)".to_string(), |r| format!(": {r}"))
            );
            let _ = writeln!(
                out,
                "<rect class=\"belief m\" data-k=\"s:{shard_key} n:{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>",
                escape(node),
                ms(belief.start_ns),
                top + 11 + belief.row as u64 * belief_h,
                ms((belief.end_ns - belief.start_ns).max(min_w_ns)),
                belief_h - 1,
                colour(belief.node),
                escape(&tip)
            );
        }
    }
    out.push_str("</g>\n");
}

fn marks(out: &mut String, timeline: &Timeline, rows: &Rows) {
    out.push_str("<g id=\"marks\">\n");
    for mark in &timeline.marks {
        let Some(&top) = rows.node_top.get(mark.node.index()) else {
            continue;
        };
        let mut keys = format!("n:{}", escape(timeline.name(mark.node)));
        if let Some(resource) = &mark.resource {
            let _ = write!(keys, " r:{}", escape(resource));
        }
        if let Some(shard) = mark.shard {
            let _ = write!(keys, " s:{shard}");
        }
        let _ = writeln!(
            out,
            "<line class=\"mk m {}\" data-k=\"{keys}\" x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\"><title>{}</title></line>",
            mark.kind.name(),
            top + 3,
            top + LANE_H - 3,
            escape(&format!(
                "{} at {}: {}",
                timeline.name(mark.node),
                secs(mark.time_ns),
                mark.label
            )),
            x = ms(mark.time_ns)
        );
    }
    out.push_str("</g>\n");
}

fn curve_max(timeline: &Timeline) -> u64 {
    timeline
        .curve
        .iter()
        .map(|p| p.desired_replicas.max(p.running))
        .max()
        .unwrap_or(0)
        .max(1)
}

/// One line of the curve: its class and the value it plots.
type Series = fn(&super::CurvePoint) -> u64;

fn curve(out: &mut String, timeline: &Timeline, rows: &Rows, end_ns: u64) {
    let max = curve_max(timeline);
    let bottom = rows.curve_top + CURVE_H - 4;
    let span = CURVE_H - 10;
    // Tenths of a pixel, in integers: value v sits v/max of the way up.
    let y = |value: u64| {
        let tenths = bottom * 10 - value * span * 10 / max;
        format!("{}.{}", tenths / 10, tenths % 10)
    };
    let _ = write!(
        out,
        "<g id=\"curve\"><line class=\"baseline\" x1=\"0\" x2=\"{}\" y1=\"{bottom}\" y2=\"{bottom}\"/>",
        ms(end_ns)
    );
    let series: [(&str, Series); 3] = [
        ("desired", |p| p.desired_replicas),
        ("running", |p| p.running),
        ("current", |p| p.running_current),
    ];
    for (class, value) in series {
        let mut points = String::new();
        let mut last = 0;
        let _ = write!(points, "0,{}", y(0));
        for point in &timeline.curve {
            let x = ms(point.time_ns);
            let _ = write!(points, " {x},{} {x},{}", y(last), y(value(point)));
            last = value(point);
        }
        let _ = write!(points, " {},{}", ms(end_ns), y(last));
        let _ = write!(
            out,
            "<polyline class=\"series {class}\" points=\"{points}\"/>"
        );
    }
    // Hover targets: one transparent slice per change, with the values.
    for (index, point) in timeline.curve.iter().enumerate() {
        let next = timeline.curve.get(index + 1).map_or(end_ns, |p| p.time_ns);
        let _ = write!(
            out,
            "<rect class=\"slice\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{CURVE_H}\"><title>from {}: desired {} replicas, {} instances running, {} at the desired generation</title></rect>",
            ms(point.time_ns),
            rows.curve_top,
            ms(next.saturating_sub(point.time_ns)),
            secs(point.time_ns),
            point.desired_replicas,
            point.running,
            point.running_current
        );
    }
    out.push_str("</g>\n");
}

fn violations(out: &mut String, timeline: &Timeline, rows: &Rows) {
    out.push_str("<g id=\"violations\">\n");
    for (index, violation) in timeline.violations.iter().enumerate() {
        let nodes: Vec<&str> = violation.nodes.iter().map(|&n| timeline.name(n)).collect();
        let tip = format!(
            "{} at {} on {} (trace entry {}): {}",
            violation.property,
            secs(violation.time_ns),
            nodes.join(", "),
            violation.trace_index,
            violation.message
        );
        let _ = write!(
            out,
            "<g class=\"violation\" id=\"violation-{index}\" data-property=\"{}\" data-time-ns=\"{}\" data-k=\"{}\"><title>{}</title>\
             <line class=\"vline\" x1=\"{x}\" x2=\"{x}\" y1=\"0\" y2=\"{}\"/>",
            escape(violation.property),
            violation.time_ns,
            node_keys(timeline, &violation.nodes),
            escape(&tip),
            rows.height,
            x = ms(violation.time_ns)
        );
        // A heavier tick on each lane the violation names.
        for node in &violation.nodes {
            if let Some(&top) = rows.node_top.get(node.index()) {
                let _ = write!(
                    out,
                    "<line class=\"vnode\" x1=\"{x}\" x2=\"{x}\" y1=\"{top}\" y2=\"{}\"/>",
                    top + LANE_H,
                    x = ms(violation.time_ns)
                );
            }
        }
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n");
}

fn lists(out: &mut String, timeline: &Timeline) {
    let _ = writeln!(
        out,
        "<section id=\"violation-list\"><h2>Violations ({})</h2>",
        timeline.violations.len()
    );
    if timeline.violations.is_empty() {
        out.push_str("<p>Every property held.</p>\n");
    } else {
        out.push_str("<ol>\n");
    }
    for (index, violation) in timeline.violations.iter().enumerate() {
        let nodes: Vec<&str> = violation.nodes.iter().map(|&n| timeline.name(n)).collect();
        let _ = writeln!(
            out,
            "<li class=\"violation-item\" data-property=\"{p}\"><button type=\"button\" class=\"goto\" data-t=\"{t}\" data-target=\"violation-{index}\">show</button> \
             <code>{p}</code> at {} on {} (trace entry {}): {}</li>",
            secs(violation.time_ns),
            escape(&nodes.join(", ")),
            violation.trace_index,
            escape(&violation.message),
            p = escape(violation.property),
            t = ms(violation.time_ns)
        );
    }
    if !timeline.violations.is_empty() {
        out.push_str("</ol>\n");
    }
    let _ = writeln!(
        out,
        "</section>\n<section id=\"fault-list\"><h2>Faults ({})</h2>",
        timeline.faults.len()
    );
    if !timeline.faults.is_empty() {
        out.push_str("<ol>\n");
        for fault in &timeline.faults {
            let _ = writeln!(
                out,
                "<li><button type=\"button\" class=\"goto\" data-t=\"{}\">show</button> at {}: {}</li>",
                ms(fault.start_ns),
                secs(fault.start_ns),
                escape(&fault.label)
            );
        }
        out.push_str("</ol>\n");
    }
    out.push_str("</section>\n");
}

const STYLE: &str = "
body{font:13px/1.4 system-ui,sans-serif;margin:12px;color:#222;background:#fff}
h1{font-size:17px;margin:0 0 6px}h2{font-size:15px;margin:14px 0 4px}
#controls{margin:4px 0}#controls button{font:inherit}#range{color:#555;margin-left:8px}
#legend{margin:4px 0 8px;color:#444}#legend .item{margin-right:12px;white-space:nowrap}#legend svg{vertical-align:middle;margin-right:3px}
#frame{overflow-x:auto;border:1px solid #ccc}
#details{min-height:2.8em;margin:6px 0;padding:4px 8px;background:#f6f6f2;border:1px solid #ddd;white-space:pre-wrap}
svg text{font:11px system-ui,sans-serif;fill:#222}
text.heading{font-weight:600;fill:#444}rect.heading{fill:#eceff3}
rect.axis-bg{fill:#fafafa}line.tick{stroke:#999}text.tick{fill:#555}
rect.band{fill:#fff}rect.band.odd{fill:#f7f7f9}
#plot line,#plot rect,#plot polyline{vector-effect:non-scaling-stroke}
#plot{cursor:grab}
.req.ok{fill:#3a9d5d}.req.client-error{fill:#e6a23c}.req.server-error{fill:#d9534f}
.req.no-answer{fill:#b9b9b9}.req.abandoned{fill:#5b5b5b}.req.retry{stroke:#111;stroke-width:1}
.fault rect,rect.fault{fill-opacity:.28}.fault.k-partition rect,rect.k-partition{fill:#d62728}
.fault.k-clog rect,rect.k-clog{fill:#ff7f0e}.fault.k-crash rect,rect.k-crash{fill:#333}
.fault.k-pause rect,rect.k-pause{fill:#1f77b4}.fault.k-clock rect,rect.k-clock{fill:#9467bd}
.fault.k-degrade rect,rect.k-degrade{fill:#bcbd22}
line.jump{stroke:#9467bd;stroke-width:3;stroke-dasharray:3 2}
.term{fill-opacity:.9}.belief{fill-opacity:.75}
line.mk{stroke-width:1.5}.mk.charge{stroke:#b8860b;stroke-width:2.5}.mk.charge-dedup{stroke:#e0c050}
.mk.start{stroke:#2ca02c}.mk.stop{stroke:#8c564b}.mk.rejected{stroke:#e377c2;stroke-width:2.5}
.mk.acquired{stroke:#1f77b4}.mk.replay{stroke:#17becf}.mk.conflict{stroke:#ff7f0e}.mk.takeover{stroke:#9467bd}
line.healed{stroke:#2ca02c;stroke-dasharray:4 3}
line.vline{stroke:#e00;stroke-width:2}line.vnode{stroke:#e00;stroke-width:5}
path.flag{fill:#e00;cursor:pointer}
polyline.series{fill:none;stroke-width:1.5}.series.desired{stroke:#1f77b4}.series.running{stroke:#ff7f0e;stroke-dasharray:4 2}.series.current{stroke:#2ca02c}
text.curve-label.desired{fill:#1f77b4}text.curve-label.running{fill:#ff7f0e}text.curve-label.current{fill:#2ca02c}
line.baseline{stroke:#bbb}rect.slice{fill:transparent}
.dim{opacity:.08}text.lane.dim{opacity:.3}
li.violation-item code{color:#b00}
";

const SCRIPT: &str = r#"
(function () {
  var errors = [];
  function record(message) {
    errors.push(String(message));
    document.body.setAttribute('data-script-errors', errors.join(' | '));
  }
  window.onerror = function (message, source, line, column) {
    record(message + ' (line ' + line + ':' + column + ')');
  };
  try {
    var svg = document.getElementById('tl');
    var plot = document.getElementById('plot');
    var ticks = document.getElementById('ticks');
    var details = document.getElementById('details');
    var range = document.getElementById('range');
    var NS = 'http://www.w3.org/2000/svg';
    var endMs = parseFloat(svg.getAttribute('data-end-ms'));
    var plotW = parseFloat(svg.getAttribute('data-plot-w'));
    var plotH = plot.viewBox.baseVal.height;
    var t0 = 0, t1 = endMs;
    var flags = Array.prototype.slice.call(document.querySelectorAll('path.flag'));

    function fmt(msv, step) {
      var s = msv / 1000;
      var digits = step >= 1000 ? 0 : step >= 100 ? 1 : step >= 10 ? 2 : 3;
      return s.toFixed(digits) + ' s';
    }
    function apply() {
      var span = Math.max(t1 - t0, 0.001);
      plot.setAttribute('viewBox', t0 + ' 0 ' + span + ' ' + plotH);
      while (ticks.firstChild) ticks.removeChild(ticks.firstChild);
      var raw = span / 10, step = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
      if (raw / step >= 5) step *= 5; else if (raw / step >= 2) step *= 2;
      for (var t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
        var x = (t - t0) / span * plotW;
        var line = document.createElementNS(NS, 'line');
        line.setAttribute('class', 'tick');
        line.setAttribute('x1', x); line.setAttribute('x2', x);
        line.setAttribute('y1', 18); line.setAttribute('y2', 28);
        ticks.appendChild(line);
        var text = document.createElementNS(NS, 'text');
        text.setAttribute('class', 'tick');
        text.setAttribute('x', x + 2); text.setAttribute('y', 14);
        text.textContent = fmt(t, step);
        ticks.appendChild(text);
      }
      flags.forEach(function (flag) {
        var t = parseFloat(flag.getAttribute('data-t'));
        var x = (t - t0) / span * plotW;
        flag.setAttribute('d', 'M' + x + ',28 l-6,-10 h12 z');
        flag.style.display = (t < t0 || t > t1) ? 'none' : '';
      });
      range.textContent = 'showing ' + fmt(t0, 1) + ' to ' + fmt(t1, 1);
    }
    function zoom(factor, centre) {
      var span = (t1 - t0) * factor;
      span = Math.min(Math.max(span, 0.05), endMs);
      t0 = centre - (centre - t0) * span / (t1 - t0);
      t1 = t0 + span;
      clamp();
      apply();
    }
    function clamp() {
      var span = t1 - t0;
      if (t0 < 0) { t0 = 0; t1 = span; }
      if (t1 > endMs) { t1 = endMs; t0 = Math.max(0, endMs - span); }
    }
    function at(clientX) {
      var box = plot.getBoundingClientRect();
      return t0 + (clientX - box.left) / box.width * (t1 - t0);
    }
    plot.addEventListener('wheel', function (event) {
      event.preventDefault();
      zoom(event.deltaY < 0 ? 0.8 : 1.25, at(event.clientX));
    }, { passive: false });
    var drag = null;
    plot.addEventListener('mousedown', function (event) {
      drag = { x: event.clientX, t0: t0, t1: t1 };
    });
    window.addEventListener('mouseup', function () { drag = null; });
    window.addEventListener('mousemove', function (event) {
      if (!drag) return;
      var box = plot.getBoundingClientRect();
      var shift = (event.clientX - drag.x) / box.width * (drag.t1 - drag.t0);
      t0 = drag.t0 - shift; t1 = drag.t1 - shift;
      clamp();
      apply();
    });
    document.getElementById('zoom-in').addEventListener('click', function () { zoom(0.5, (t0 + t1) / 2); });
    document.getElementById('zoom-out').addEventListener('click', function () { zoom(2, (t0 + t1) / 2); });
    document.getElementById('zoom-reset').addEventListener('click', function () { t0 = 0; t1 = endMs; apply(); });
    function show(node) {
      for (var n = node; n && n !== svg; n = n.parentNode) {
        var first = n.firstElementChild;
        if (first && first.tagName === 'title') { details.textContent = first.textContent; return; }
      }
    }
    svg.addEventListener('mouseover', function (event) { show(event.target); });
    Array.prototype.forEach.call(document.querySelectorAll('.goto, path.flag'), function (button) {
      button.addEventListener('click', function () {
        var t = parseFloat(button.getAttribute('data-t'));
        var span = Math.min(4000, endMs);
        t0 = t - span / 2; t1 = t + span / 2;
        clamp();
        apply();
        var target = button.getAttribute('data-target');
        if (target) show(document.getElementById(target));
        svg.scrollIntoView({ block: 'nearest' });
      });
    });
    var marks = Array.prototype.slice.call(document.querySelectorAll('[data-k]'));
    document.getElementById('filter').addEventListener('change', function (event) {
      var key = event.target.value;
      marks.forEach(function (mark) {
        if (mark.classList.contains('violation')) return;
        var keys = mark.getAttribute('data-k').split(' ');
        mark.classList.toggle('dim', key !== '' && keys.indexOf(key) < 0);
      });
    });
    // A link can open at a moment and a filter: #t=5.0-9.5&filter=n:store
    var hash = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (part) {
      var pair = part.split('=');
      if (pair.length === 2) hash[pair[0]] = decodeURIComponent(pair[1]);
    });
    if (hash.t) {
      var ends = hash.t.split('-').map(parseFloat);
      if (ends.length === 2 && ends[0] < ends[1]) { t0 = ends[0] * 1000; t1 = ends[1] * 1000; clamp(); }
    }
    if (hash.filter) {
      var select = document.getElementById('filter');
      select.value = hash.filter;
      select.dispatchEvent(new Event('change'));
    }
    apply();
    document.body.setAttribute('data-ready', '1');
  } catch (error) {
    record(error && error.stack ? error.stack : error);
  }
})();
"#;
