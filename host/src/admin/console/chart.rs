//! The expiry timeline as inline SVG: one bar per day, drawn by the host so that the console
//! needs no script. Colours come from the stylesheet (classes), as the Content-Security-Policy
//! allows no inline style.

use std::fmt::Write as _;

use super::html::esc;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 220;
/// Room for the axis labels.
const LEFT: u32 = 40;
const BOTTOM: u32 = 28;
const TOP: u32 = 12;

/// Days within which an expiry is urgent (drawn in the warning colour): the usual renewal
/// margin of ACME clients, a third of a 90-day lifetime.
const URGENT_DAYS: usize = 30;

/// A bar chart of `per_day[i]` certificates expiring on day `i` from today, labelled for
/// screen readers with its total and the busiest day.
pub fn expiry_timeline(per_day: &[u64]) -> String {
    let days = per_day.len().max(1) as u32;
    let max = per_day.iter().copied().max().unwrap_or(0).max(1);
    let total: u64 = per_day.iter().sum();
    let plot_w = WIDTH - LEFT - 8;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let step = plot_w as f64 / f64::from(days);
    let summary = match per_day
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (**n, usize::MAX - i))
    {
        Some((day, n)) if *n > 0 => format!(
            "{total} certificates expire in the next {days} days; the most, {n}, in {}.",
            day_label(day)
        ),
        _ => format!("No certificate expires in the next {days} days."),
    };
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-labelledby=\"chart-title\" preserveAspectRatio=\"xMinYMin meet\">\
         <title id=\"chart-title\">{}</title>",
        esc(&summary)
    );
    // Horizontal guides at 0, half the maximum (rounded down, drawn where it belongs) and the
    // maximum.
    let mut guides = vec![0, max / 2, max];
    guides.dedup();
    for value in guides {
        let y = TOP + plot_h - (value * u64::from(plot_h) / max) as u32;
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{value}</text>",
            WIDTH - 8,
            LEFT - 6,
            y + 4
        );
    }
    for (day, n) in per_day.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let h = (*n as f64 / max as f64 * f64::from(plot_h)).max(1.0);
        let x = f64::from(LEFT) + step * day as f64 + 1.0;
        let y = f64::from(TOP + plot_h) - h;
        let class = if day < URGENT_DAYS {
            "bar urgent"
        } else {
            "bar"
        };
        let _ = write!(
            svg,
            "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\">\
             <title>{n} expiring {}</title></rect>",
            (step - 2.0).max(1.0),
            day_label(day)
        );
    }
    // Day ticks every 15 days.
    for day in (0..per_day.len()).step_by(15) {
        let x = f64::from(LEFT) + step * day as f64;
        let _ = write!(
            svg,
            "<text class=\"axis\" x=\"{x:.1}\" y=\"{}\">+{day}d</text>",
            HEIGHT - 8
        );
    }
    svg.push_str("</svg>");
    svg
}

fn day_label(day: usize) -> String {
    match day {
        0 => "the next 24 hours".into(),
        1 => "1 day".into(),
        d => format!("{d} days"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_day() {
        let mut per_day = vec![0; 90];
        per_day[2] = 4;
        per_day[45] = 2;
        let svg = expiry_timeline(&per_day);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("6 certificates expire in the next 90 days; the most, 4, in 2 days."));
        // The busiest day is full height, the urgent one marked.
        let plot_h = HEIGHT - TOP - BOTTOM;
        assert!(svg.contains("class=\"bar urgent\" x=\""), "{svg}");
        assert!(svg.contains(&format!("height=\"{plot_h}.0\"")), "{svg}");
        assert!(svg.contains(&format!("height=\"{:.1}\"", f64::from(plot_h) / 2.0)));
        assert!(svg.contains("<title>2 expiring 45 days</title>"));
        // The middle guide sits at its value's height: 2 of 4.
        let bottom = TOP + plot_h;
        assert!(svg.contains(&format!("y1=\"{}\" y2=\"{}\"/><text class=\"axis\" x=\"34\" y=\"{}\" text-anchor=\"end\">2</text>", bottom - plot_h / 2, bottom - plot_h / 2, bottom - plot_h / 2 + 4)), "{svg}");
        assert!(!svg.contains("style="));
    }

    #[test]
    fn an_empty_timeline_says_so() {
        let svg = expiry_timeline(&[0; 90]);
        assert!(svg.contains("No certificate expires in the next 90 days."));
        assert_eq!(svg.matches("<rect").count(), 0);
    }
}
