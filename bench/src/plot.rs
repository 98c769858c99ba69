//! SVG line charts of the cost-growth measurements, drawn by the bench beside its table.

use std::path::Path;

use plotters::prelude::*;

/// One line of a chart: its name and its points.
pub struct Series {
    /// The legend's label.
    pub label: String,
    /// `(x, y)` points, x ascending.
    pub points: Vec<(f64, f64)>,
}

/// Draws `series` on log-scaled x against linear y into the SVG file `path`.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> anyhow::Result<()> {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (x_min, x_max) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let y_max = ys.fold(0.0f64, f64::max) * 1.15;
    if !(x_min > 0.0 && x_max >= x_min && y_max > 0.0) {
        anyhow::bail!("{title}: nothing to draw");
    }
    let root = SVGBackend::new(path, (760, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(draw)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d((x_min * 0.8..x_max * 1.25).log_scale(), 0.0..y_max)
        .map_err(draw)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(draw)?;
    let colours = [RGBColor(200, 40, 40), RGBColor(40, 90, 200), RGBColor(40, 150, 60)];
    for (line, colour) in series.iter().zip(colours.iter().cycle()) {
        let colour = *colour;
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), colour.stroke_width(2)))
            .map_err(draw)?
            .label(line.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        chart
            .draw_series(line.points.iter().map(|p| Circle::new(*p, 3, colour.filled())))
            .map_err(draw)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(draw)?;
    root.present().map_err(draw)?;
    Ok(())
}

fn draw<E: std::fmt::Display>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_each_series_and_refuses_nothing_to_draw() {
        let dir = std::env::temp_dir().join(format!("bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.svg");
        let series = [
            Series { label: "wasm in host".into(), points: vec![(1e3, 900.0), (1e6, 950.0)] },
            Series { label: "native".into(), points: vec![(1e3, 500.0), (1e6, 520.0)] },
        ];
        line_chart(&path, "CPU per member", "members", "ns", &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("wasm in host") && svg.contains("native"));
        assert!(line_chart(&path, "empty", "x", "y", &[]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
