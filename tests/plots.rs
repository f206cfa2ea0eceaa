//! The lesson's pictures, read back from their SVG: titles and labels in the caller's
//! language, tick labels, how many heat-map cells and bars there are and their colours,
//! legend entries, and bad input rejected with an error that says what is wrong.
//!
//! Set `UB_PLOTS_DIR=/some/dir` to also write every figure drawn here to that folder, for
//! looking at them.

use candle_core::{DType, Device, Tensor};
use understanding_buffers::error::Error;
use understanding_buffers::notebook::display::Show;
use understanding_buffers::notebook::plots::{
    bar_chart, grouped_bar_chart, heatmap, line_chart, Figure,
};
use understanding_buffers::notebook::width::{display_width, is_wide};

const INPUTS: [[f32; 3]; 6] = [
    [0.43, 0.15, 0.89],
    [0.55, 0.87, 0.66],
    [0.57, 0.85, 0.64],
    [0.22, 0.58, 0.33],
    [0.77, 0.25, 0.10],
    [0.05, 0.80, 0.55],
];
/// The ends of viridis: the smallest value's colour and the largest's.
const DARK: &str = "#440154";
const YELLOW: &str = "#FEE825";
const GREY: &str = "#C8C8C8";

/// The figure's texts in English and in Chinese, as the two notebooks give them.
struct Words {
    lang: &'static str,
    mask_before: &'static str,
    mask_after: &'static str,
    weights: &'static str,
    key: &'static str,
    query: &'static str,
}

const EN: Words = Words {
    lang: "en",
    mask_before: "Causal mask before the round trip",
    mask_after: "Mask after the round trip, as a buffer",
    weights: "Attention weights: the causal triangle",
    key: "key position",
    query: "query position",
};
const ZH: Words = Words {
    lang: "zh",
    mask_before: "往返前的因果掩码",
    mask_after: "作为缓冲区往返后的掩码",
    weights: "注意力权重：因果三角形",
    key: "键的位置",
    query: "查询的位置",
};

fn keep(fig: &Figure, name: &str) {
    if let Some(dir) = std::env::var_os("UB_PLOTS_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{name}.svg"));
        fig.save_svg(&path).expect("write the review copy");
    }
}

/// The value of attribute `name` in the tag `tag` (the text after `<rect`, `<text`, …).
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// The SVG's `<text>` elements: (x, y, text), text trimmed and unescaped.
fn texts(svg: &str) -> Vec<(i32, i32, String)> {
    svg.split("<text")
        .skip(1)
        .map(|chunk| {
            let tag = &chunk[..chunk.find('>').expect("text tag closes")];
            let body = &chunk[tag.len() + 1..chunk.find("</text>").expect("text element ends")];
            let num = |n| {
                attr(tag, n)
                    .and_then(|v| v.parse().ok())
                    .expect("text position")
            };
            let body = body.trim().replace("&lt;", "<").replace("&gt;", ">");
            (num("x"), num("y"), body.replace("&amp;", "&"))
        })
        .collect()
}

/// The font size of the (first) text element saying `text`.
fn font_size(svg: &str, text: &str) -> f64 {
    let chunk = svg
        .split("<text")
        .find(|chunk| {
            chunk
                .split_once('>')
                .map(|(_, rest)| rest.trim_start().starts_with(&format!("{text}\n")))
                == Some(true)
        })
        .unwrap_or_else(|| panic!("no text {text:?}"));
    attr(chunk, "font-size").unwrap().parse().unwrap()
}

fn count(svg: &str, text: &str) -> usize {
    texts(svg).iter().filter(|(_, _, t)| t == text).count()
}

/// The SVG's filled rectangles but the white background: (x, y, width, height, fill).
fn filled_rects(svg: &str) -> Vec<(i32, i32, i32, i32, String)> {
    svg.split("<rect")
        .skip(1)
        .map(|chunk| &chunk[..chunk.find("/>").expect("rect closes")])
        .filter(|tag| attr(tag, "fill") != Some("none") && attr(tag, "opacity") == Some("1"))
        .map(|tag| {
            let num = |n| {
                attr(tag, n)
                    .and_then(|v| v.parse().ok())
                    .expect("rect geometry")
            };
            let fill = attr(tag, "fill").expect("fill").to_string();
            (num("x"), num("y"), num("width"), num("height"), fill)
        })
        .filter(|r| !(r.0 == 0 && r.1 == 0 && r.4 == "#FFFFFF"))
        .collect()
}

/// A heat map's cells, row by row: the filled rectangles left of the colour bar (whose strips
/// are the rightmost rectangles), sorted by position.
fn cells(svg: &str) -> Vec<(i32, i32, i32, i32, String)> {
    let rects = filled_rects(svg);
    let bar_x = rects.iter().map(|r| r.0).max().expect("rectangles");
    let mut cells: Vec<_> = rects.into_iter().filter(|r| r.0 < bar_x).collect();
    cells.sort_by_key(|r| (r.1, r.0));
    cells
}

/// The tick labels under (`below` = true) or left of the cells.
fn axis_ticks(svg: &str, below: bool) -> Vec<String> {
    let cells = cells(svg);
    let (left, top) = (cells[0].0, cells[0].1);
    let right = cells.iter().map(|c| c.0 + c.2).max().unwrap();
    let bottom = cells.iter().map(|c| c.1 + c.3).max().unwrap();
    let mut ticks: Vec<_> = texts(svg)
        .into_iter()
        .filter(|(x, y, t)| {
            let (x, y) = (*x, *y);
            t.parse::<i64>().is_ok()
                && if below {
                    (left..=right).contains(&x) && y > bottom && y < bottom + 20
                } else {
                    (top..=bottom).contains(&y) && x < left && x > left - 30
                }
        })
        .collect();
    ticks.sort_by_key(|(x, y, _)| (*y, *x));
    ticks.into_iter().map(|(_, _, t)| t).collect()
}

/// The consecutive texts that make up `label`, wrapped over one or more lines.
fn wrapped(svg: &str, label: &str) -> Vec<(i32, i32, String)> {
    let all = texts(svg);
    for i in 0..all.len() {
        for j in i + 1..=all.len() {
            let parts: Vec<&str> = all[i..j].iter().map(|(_, _, t)| t.as_str()).collect();
            if parts.join(" ") == label || parts.concat() == label {
                return all[i..j].to_vec();
            }
        }
    }
    Vec::new()
}

fn polylines_with(svg: &str, points: usize) -> usize {
    svg.split("<polyline")
        .skip(1)
        .filter(|el| attr(el, "points").unwrap().split_whitespace().count() == points)
        .count()
}

fn plot_message(err: Error) -> String {
    match err {
        Error::Plot(msg) => msg,
        other => panic!("expected Error::Plot, got {other:?}"),
    }
}

/// `triu(ones(n, n), diagonal=1)` as f32: 1 above the diagonal.
fn causal_mask(n: usize) -> Tensor {
    Tensor::tril2(n, DType::F32, &Device::Cpu)
        .and_then(|t| t.affine(-1.0, 1.0))
        .expect("mask")
}

/// Softmax-normalised causal attention weights of the lesson's six tokens, with the
/// inputs themselves as queries and keys.
fn attention_weights() -> Tensor {
    let x = Tensor::new(&INPUTS, &Device::Cpu).unwrap();
    let scores = (x.matmul(&x.t().unwrap()).unwrap() / 3f64.sqrt()).unwrap();
    let mask = causal_mask(6).to_dtype(DType::U8).unwrap();
    let neg_inf = Tensor::full(f32::NEG_INFINITY, (6, 6), &Device::Cpu).unwrap();
    let masked = mask.where_cond(&neg_inf, &scores).unwrap();
    candle_nn::ops::softmax_last_dim(&masked).unwrap()
}

fn pe_table(positions: usize, dims: usize) -> Vec<f32> {
    let mut table = vec![0f32; positions * dims];
    for p in 0..positions {
        for i in 0..dims / 2 {
            let angle = p as f32 / 10000f32.powf(2.0 * i as f32 / dims as f32);
            table[p * dims + 2 * i] = angle.sin();
            table[p * dims + 2 * i + 1] = angle.cos();
        }
    }
    table
}

/// Every text on the figure is a number or comes from the caller: with Chinese labels, no
/// text holds a Latin letter except numbers' `inf`.
fn assert_no_english(svg: &str, also_allowed: &[&str]) {
    for (_, _, t) in texts(svg) {
        let latin = t.chars().any(|c| c.is_ascii_alphabetic());
        assert!(
            !latin || t.ends_with("inf") || also_allowed.iter().any(|a| t.contains(a)),
            "text {t:?} was not given by the caller"
        );
    }
}

#[test]
fn the_mask_before_the_round_trip_is_a_triangle_of_ones_in_both_languages() {
    for w in [EN, ZH] {
        let fig = heatmap(&causal_mask(6), w.mask_before, w.key, w.query).unwrap();
        keep(&fig, &format!("mask_before_{}", w.lang));
        let svg = fig.svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(fig.title(), w.mask_before);
        assert_eq!(count(svg, w.mask_before), 1, "the title is one line");
        assert_eq!(count(svg, w.key), 1);
        assert_eq!(count(svg, w.query), 1);
        let sizes = [w.mask_before, w.key, w.query, "5"].map(|t| font_size(svg, t));
        assert_eq!(sizes, [16.0, 14.0, 14.0, 12.0], "title, axis labels, ticks");
        let cells = cells(svg);
        assert_eq!(cells.len(), 36);
        // Row 0, column 5 is masked (1, yellow); row 5, column 0 is not (0, dark).
        assert_eq!(cells[5].4, YELLOW);
        assert_eq!(cells[30].4, DARK);
        assert_eq!(cells.iter().filter(|c| c.4 == YELLOW).count(), 15);
        assert_eq!(cells.iter().filter(|c| c.4 == DARK).count(), 21);
        let indices: Vec<String> = (0..6).map(|i| i.to_string()).collect();
        assert_eq!(axis_ticks(svg, true), indices);
        assert_eq!(axis_ticks(svg, false), indices);
        // 15 annotations say 1 and 21 say 0, besides the ticks and the colour bar's ends.
        assert_eq!(count(svg, "1"), 15 + 2 + 1);
        assert_eq!(count(svg, "0"), 21 + 2 + 1);
        assert_eq!(count(svg, "0.6"), 1, "a colour-bar tick");
        // Every text is in the browser's sans-serif, which falls back to a CJK font.
        let families = svg.matches("font-family=\"sans-serif\"").count();
        assert_eq!(families, svg.matches("<text").count());
        if w.lang == "zh" {
            assert_no_english(svg, &[]);
        }
    }
}

#[test]
fn the_mask_after_the_round_trip_shows_its_twos() {
    for w in [EN, ZH] {
        let mask2 = (causal_mask(6) * 2.0).unwrap();
        let fig = heatmap(&mask2, w.mask_after, w.key, w.query).unwrap();
        keep(&fig, &format!("mask_after_{}", w.lang));
        let svg = fig.svg();
        assert_eq!(count(svg, w.mask_after), 1);
        assert_eq!(
            count(svg, "2"),
            15 + 2 + 1,
            "annotations, ticks, colour bar"
        );
        assert_eq!(cells(svg)[5].4, YELLOW, "2 is now the top of the scale");
        assert_eq!(cells(svg)[30].4, DARK);
    }
}

#[test]
fn attention_weights_show_two_decimals_and_the_causal_triangle() {
    let weights = attention_weights();
    let w = weights.to_vec2::<f32>().unwrap();
    for words in [EN, ZH] {
        let fig = heatmap(&weights, words.weights, words.key, words.query).unwrap();
        keep(&fig, &format!("attention_weights_{}", words.lang));
        let svg = fig.svg();
        assert_eq!(count(svg, words.weights), 1);
        let cells = cells(svg);
        assert_eq!(cells.len(), 36);
        assert_eq!(cells[0].4, YELLOW, "row 0 attends only to itself: weight 1");
        assert_eq!(cells[1].4, DARK, "weight 0 above the diagonal");
        for (r, c) in [(5, 1), (3, 2), (1, 0)] {
            let shown = format!("{:.2}", w[r][c]);
            let shown = shown.trim_end_matches('0');
            assert!(count(svg, shown) >= 1, "cell ({r}, {c}) shows {shown}");
        }
        assert_eq!(
            count(svg, "0"),
            15 + 2 + 1,
            "masked cells, ticks, colour bar"
        );
    }
}

#[test]
fn masked_scores_draw_infinities_as_grey_cells_marked_inf() {
    let x = Tensor::new(&INPUTS, &Device::Cpu).unwrap();
    let scores = x.matmul(&x.t().unwrap()).unwrap();
    let mask = causal_mask(6).to_dtype(DType::U8).unwrap();
    let neg_inf = Tensor::full(f32::NEG_INFINITY, (6, 6), &Device::Cpu).unwrap();
    let masked = mask.where_cond(&neg_inf, &scores).unwrap();
    let fig = heatmap(&masked, "掩码后的分数", "键", "查询").unwrap();
    keep(&fig, "masked_scores");
    assert_eq!(count(fig.svg(), "-inf"), 15);
    let cells = cells(fig.svg());
    assert_eq!(cells[5].4, GREY);
    assert_ne!(cells[30].4, GREY);
    assert_eq!(cells.iter().filter(|c| c.4 == GREY).count(), 15);
}

#[test]
fn the_positional_table_is_800_cells_without_annotations() {
    let (positions, dims) = (50usize, 16usize);
    let table = pe_table(positions, dims);
    let pe = Tensor::from_vec(table.clone(), (positions, dims), &Device::Cpu).unwrap();
    for (lang, title, x, y) in [
        (
            "en",
            "Sinusoidal positional-encoding table",
            "dimension",
            "position",
        ),
        ("zh", "正弦位置编码表", "维度", "位置"),
    ] {
        let fig = heatmap(&pe, title, x, y).unwrap();
        keep(&fig, &format!("pe_table_{lang}"));
        let svg = fig.svg();
        let cells = cells(svg);
        assert_eq!(cells.len(), positions * dims);
        assert!(texts(svg).len() < 50, "no per-cell text");
        let every_fifth: Vec<String> = (0..50).step_by(5).map(|p| p.to_string()).collect();
        assert_eq!(axis_ticks(svg, false), every_fifth);
        let all: Vec<String> = (0..16).map(|d| d.to_string()).collect();
        assert_eq!(axis_ticks(svg, true), all);
        // Dimension 1 at position 0 is cos(0) = 1, the top of the scale; dimension 0 is
        // sin(0) = 0, halfway.
        assert_eq!(cells[1].4, YELLOW);
        assert_ne!(cells[0].4, YELLOW);
        // The colour bar runs from about -1 to 1 (1 is also a column index).
        for (tick, times) in [("-0.5", 1), ("0.5", 1), ("1", 2)] {
            assert_eq!(count(svg, tick), times, "{tick}");
        }
    }
}

#[test]
fn positional_curves_have_one_line_and_one_legend_entry_per_dimension() {
    let (positions, dims) = (50usize, 16usize);
    let table = pe_table(positions, dims);
    let x: Vec<f32> = (0..positions).map(|p| p as f32).collect();
    let picked = [0usize, 1, 4, 5, 10];
    for (lang, name, title, xl, yl) in [
        (
            "en",
            "dim",
            "Positional encoding, a few dimensions",
            "position",
            "value",
        ),
        ("zh", "维度", "位置编码的几个维度", "位置", "取值"),
    ] {
        let series: Vec<(String, Vec<f32>)> = picked
            .iter()
            .map(|&d| {
                (
                    format!("{name} {d}"),
                    (0..positions).map(|p| table[p * dims + d]).collect(),
                )
            })
            .collect();
        let fig = line_chart(&x, &series, title, xl, yl).unwrap();
        keep(&fig, &format!("pe_lines_{lang}"));
        let svg = fig.svg();
        assert_eq!(count(svg, title), 1);
        assert_eq!(count(svg, xl), 1);
        assert_eq!(count(svg, yl), 1);
        // The legend lists the series top to bottom, in order.
        let legend: Vec<(i32, i32, String)> = texts(svg)
            .into_iter()
            .filter(|(_, _, t)| t.starts_with(name))
            .collect();
        assert_eq!(legend.len(), picked.len());
        assert!(legend
            .windows(2)
            .all(|w| w[0].1 < w[1].1 && w[0].0 == w[1].0));
        assert_eq!(legend[4].2, format!("{name} 10"));
        assert_eq!(polylines_with(svg, positions), series.len());
        for tick in ["10", "20", "30", "40", "-1", "-0.5", "0.5"] {
            assert_eq!(count(svg, tick), 1, "tick {tick}");
        }
        assert_eq!(count(svg, "0"), 2, "0 on both axes");
        if lang == "zh" {
            assert_no_english(svg, &[]);
        }
    }
}

#[test]
fn the_cost_bars_are_three_bars_with_their_values_above() {
    for (lang, labels, title, unit) in [
        (
            "en",
            [
                "buffer on device",
                "rebuilt every call",
                "copied from CPU every call",
            ],
            "One forward pass on CPU",
            "milliseconds",
        ),
        (
            "zh",
            ["设备上的缓冲区", "每次重建", "每次从 CPU 复制"],
            "一次前向传播的耗时（CPU）",
            "毫秒",
        ),
    ] {
        let values = [0.0213, 0.0871, 0.4123];
        let bars: Vec<(String, f64)> = labels.iter().map(|l| l.to_string()).zip(values).collect();
        let fig = bar_chart(&bars, title, unit).unwrap();
        keep(&fig, &format!("bar_times_{lang}"));
        let svg = fig.svg();
        assert_eq!(count(svg, title), 1);
        assert_eq!(count(svg, unit), 1);
        assert_eq!((font_size(svg, title), font_size(svg, unit)), (16.0, 14.0));
        assert_eq!(font_size(svg, "0.1"), 12.0, "value ticks");
        // A label too long for its bar wraps between words, onto lines one under the other.
        for label in labels {
            let lines = wrapped(svg, label);
            assert!(!lines.is_empty(), "{label}");
            assert!(
                lines
                    .windows(2)
                    .all(|w| w[0].0 == w[1].0 && w[0].1 < w[1].1),
                "{lines:?}"
            );
            assert_eq!(lines.len() > 1, label.chars().count() > 20, "{lines:?}");
        }
        let rects = filled_rects(svg);
        assert_eq!(rects.len(), 3, "{rects:?}");
        // Each bar its own colour; heights in proportion to the values.
        assert_eq!(
            rects.iter().map(|r| r.4.as_str()).collect::<Vec<_>>(),
            ["#1F77B4", "#FF7F0E", "#2CA02C"]
        );
        let ratio = f64::from(rects[2].3) / f64::from(rects[0].3);
        assert!((ratio - 0.4123 / 0.0213).abs() < 1.5, "{ratio}");
        for (value, rect) in ["0.0213", "0.0871", "0.412"].iter().zip(&rects) {
            let (x, y, _) = texts(svg).into_iter().find(|(_, _, t)| t == value).unwrap();
            assert!(
                x > rect.0 && x < rect.0 + rect.2 && y <= rect.1,
                "{value} above its bar"
            );
        }
        if lang == "zh" {
            assert_no_english(svg, &["CPU"]);
        }
    }
}

#[test]
fn the_mask_memory_is_a_bar_per_context_and_storage_with_a_legend() {
    let contexts = [1024usize, 4096, 16384, 32768];
    let groups: Vec<String> = contexts.iter().map(|n| n.to_string()).collect();
    let mib = |n: usize, bytes: usize| (n * n * bytes) as f64 / (1024.0 * 1024.0);
    for (lang, names, title, xl) in [
        (
            "en",
            ["f32 mask", "u8 mask", "no mask"],
            "Memory of a causal-mask buffer",
            "context length",
        ),
        (
            "zh",
            ["f32 掩码", "u8 掩码", "不存掩码"],
            "因果掩码缓冲区占用的内存",
            "上下文长度",
        ),
    ] {
        let series: Vec<(String, Vec<f64>)> = names
            .iter()
            .zip([4, 1, 0])
            .map(|(name, bytes)| {
                (
                    name.to_string(),
                    contexts.iter().map(|&n| mib(n, bytes)).collect(),
                )
            })
            .collect();
        let fig = grouped_bar_chart(&groups, &series, title, xl, "MiB").unwrap();
        keep(&fig, &format!("bar_memory_{lang}"));
        let svg = fig.svg();
        assert_eq!(count(svg, title), 1);
        assert_eq!(count(svg, xl), 1);
        for name in names {
            assert_eq!(count(svg, name), 1, "legend entry {name}");
        }
        // Group labels and values: the f32 mask takes 4, 64, 1024 and 4096 MiB, the u8 one
        // 1, 16, 256 and 1024.
        for (text, times) in [
            ("1024", 3),
            ("4096", 2),
            ("16384", 1),
            ("32768", 1),
            ("256", 1),
            ("64", 1),
        ] {
            assert_eq!(count(svg, text), times, "{text}");
        }
        // Twelve bars, series by series, and three legend swatches in the series' colours.
        let rects = filled_rects(svg);
        let (bars, swatches): (Vec<_>, Vec<_>) = rects.iter().partition(|r| r.2 > 20);
        assert_eq!((bars.len(), swatches.len()), (12, 3), "{rects:?}");
        let heights: Vec<i32> = bars.iter().map(|r| r.3).collect();
        assert!(
            heights[..4].windows(2).all(|h| h[0] <= h[1]) && heights[3] > 200,
            "{heights:?}"
        );
        let ratio = f64::from(heights[3]) / f64::from(heights[7]);
        assert!(
            (ratio - 4.0).abs() < 0.1,
            "f32 takes four times the bytes of u8: {ratio}"
        );
        assert!(heights[8..].iter().all(|&h| h == 0), "no mask, no memory");
        for (bar, swatch) in bars.iter().step_by(4).zip(&swatches) {
            assert_eq!(bar.4, swatch.4);
        }
        if lang == "zh" {
            assert_no_english(svg, &["MiB", "f32", "u8"]);
        }
    }
}

#[test]
fn chinese_titles_are_measured_by_their_characters_and_long_ones_wrap() {
    // 38 Chinese characters: too wide for one line at 16 px in a 600 px figure.
    let title = "加载检查点之后带有缓冲区的因果注意力模块的注意力权重以及它们在每一个位置上的取值";
    let fig = heatmap(&attention_weights(), title, "键", "查询").unwrap();
    keep(&fig, "long_title");
    let lines: Vec<String> = texts(fig.svg())
        .into_iter()
        .map(|(_, _, t)| t)
        .filter(|t| t.chars().any(is_wide))
        .filter(|t| t.chars().count() > 4)
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines.concat(), title);
    assert!(fig.svg().contains(&format!("<title>{title}</title>")));
    // 11 characters fit on one line, although plotters would count their 33 bytes.
    let fig = heatmap(&causal_mask(6), ZH.mask_after, "键", "查询").unwrap();
    assert_eq!(count(fig.svg(), ZH.mask_after), 1);
    // A bilingual title breaks at its " / ".
    let both = "Mask after the round trip, as a buffer, loaded from the checkpoint / 作为缓冲区往返后的掩码";
    let fig = heatmap(&causal_mask(6), both, "key", "query").unwrap();
    assert_eq!(count(fig.svg(), "作为缓冲区往返后的掩码"), 1);
}

#[test]
fn the_cost_chart_labels_fit_in_both_languages() {
    use understanding_buffers::lesson::cost::MaskStrategy;
    use understanding_buffers::notebook::language::Language;
    for (language, title, unit) in [
        (
            Language::English,
            "One forward pass on NVIDIA H200",
            "milliseconds",
        ),
        (
            Language::Chinese,
            "在 NVIDIA H200 上一次前向传播的耗时",
            "毫秒",
        ),
    ] {
        let bars: Vec<(String, f64)> = MaskStrategy::ALL
            .iter()
            .map(|s| s.label_in(language).to_string())
            .zip([0.021, 0.087, 0.41])
            .collect();
        let fig = bar_chart(&bars, title, unit).unwrap();
        keep(&fig, &format!("bar_times_{}", language.code()));
        let svg = fig.svg();
        assert_eq!(count(svg, title), 1, "{title}: fits on one line");
        let shown: Vec<String> = texts(svg).into_iter().map(|(_, _, t)| t).collect();
        let shown = shown.join(" ");
        for (label, _) in &bars {
            assert!(
                label.split(' ').all(|w| shown.contains(w)),
                "{label}: not all of it is on the chart: {shown}"
            );
        }
    }
}

#[test]
fn display_width_counts_chinese_as_two_columns() {
    assert_eq!(display_width("buffer on device"), 16);
    assert_eq!(display_width("设备上的缓冲区"), 14);
    assert_eq!(display_width("每次从 CPU 复制"), 15);
    assert_eq!(display_width(""), 0);
    assert_eq!(
        display_width("e\u{301}"),
        1,
        "a combining accent takes no column"
    );
    assert!(is_wide('，') && !is_wide(','));
}

#[test]
fn big_matrices_are_block_averaged_to_at_most_64_by_64_cells() {
    let fig = heatmap(&causal_mask(1024), "1024 × 1024", "x", "y").unwrap();
    keep(&fig, "mask_1024");
    let cells = cells(fig.svg());
    assert_eq!(cells.len(), 64 * 64);
    assert!(
        count(fig.svg(), "1").max(count(fig.svg(), "0")) < 4,
        "no annotations"
    );
    assert!(fig.svg().len() < 500_000, "{} bytes", fig.svg().len());
    // A 20 × 20 matrix is drawn cell by cell, without annotations, ticks every 2.
    let fig = heatmap(&causal_mask(20), "20 × 20", "x", "y").unwrap();
    assert_eq!(cells_len(fig.svg()), 400);
    assert_eq!(
        axis_ticks(fig.svg(), true),
        (0..20)
            .step_by(2)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
    );
}

fn cells_len(svg: &str) -> usize {
    cells(svg).len()
}

#[test]
fn any_dtype_and_any_layout_draw_the_same_picture() {
    let f32_fig = heatmap(&causal_mask(6), "mask", "x", "y").unwrap();
    for dtype in [
        DType::U8,
        DType::U32,
        DType::I64,
        DType::F16,
        DType::BF16,
        DType::F64,
    ] {
        let t = causal_mask(6).to_dtype(dtype).unwrap();
        assert_eq!(heatmap(&t, "mask", "x", "y").unwrap(), f32_fig, "{dtype:?}");
    }
    let lower = causal_mask(6).t().unwrap();
    let fig = heatmap(&lower, "mask", "x", "y").unwrap();
    assert_eq!(
        fig,
        heatmap(&lower.contiguous().unwrap(), "mask", "x", "y").unwrap()
    );
    assert_ne!(fig, f32_fig);
    assert_eq!(
        cells(fig.svg())[30].4,
        YELLOW,
        "the transpose is yellow below the diagonal"
    );
}

#[test]
fn show_gives_inline_svg_html_and_a_one_line_summary() {
    let fig = heatmap(&causal_mask(4), "掩码", "x", "y").unwrap();
    let (mime, html) = fig.rich();
    assert_eq!(mime, "text/html");
    assert!(html.starts_with("<div class=\"ub-figure\">\n<svg "));
    assert!(
        html.trim_end().ends_with("</svg></div>") || html.trim_end().ends_with("</svg>\n</div>")
    );
    assert!(html.contains(fig.svg()));
    assert_eq!(
        fig.plain(),
        format!("[figure: 掩码, SVG {} bytes]", fig.svg().len())
    );
    assert!(format!("{fig:?}").contains("svg_bytes"));
}

#[test]
fn titles_are_escaped_in_the_svg() {
    let fig = bar_chart(&[("a < b".to_string(), 1.0)], "x < y & z", "v").unwrap();
    assert!(fig.svg().contains("x &lt; y &amp; z"));
    assert!(!fig.svg().contains("x < y"));
    assert_eq!(count(fig.svg(), "a < b"), 1);
    assert_eq!(fig.title(), "x < y & z");
}

#[test]
fn save_svg_writes_the_document_or_says_where_it_could_not() {
    let fig = heatmap(&causal_mask(3), "Saved", "x", "y").unwrap();
    let dir = std::env::temp_dir().join(format!("ub-plots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mask.svg");
    fig.save_svg(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), fig.svg());
    std::fs::remove_dir_all(&dir).unwrap();
    let msg = plot_message(
        fig.save_svg(dir.join("missing").join("mask.svg"))
            .unwrap_err(),
    );
    assert!(msg.contains("mask.svg") && msg.contains("Saved"), "{msg}");
}

#[test]
fn bad_heatmap_input_is_an_error_that_says_what_is_wrong() {
    let batch = Tensor::zeros((2, 6, 6), DType::F32, &Device::Cpu).unwrap();
    let msg = plot_message(heatmap(&batch, "t", "x", "y").unwrap_err());
    assert!(
        msg.contains("2-D") && msg.contains("[2, 6, 6]") && msg.contains("get(0)"),
        "{msg}"
    );
    let vector = Tensor::zeros(6, DType::F32, &Device::Cpu).unwrap();
    let msg = plot_message(heatmap(&vector, "t", "x", "y").unwrap_err());
    assert!(msg.contains("1-D"), "{msg}");
    let empty = Tensor::zeros((0, 6), DType::F32, &Device::Cpu).unwrap();
    let msg = plot_message(heatmap(&empty, "t", "x", "y").unwrap_err());
    assert!(msg.contains("empty") && msg.contains("[0, 6]"), "{msg}");
    let with_nan = Tensor::new(&[[0f32, 1.0], [f32::NAN, 0.5]], &Device::Cpu).unwrap();
    let msg = plot_message(heatmap(&with_nan, "t", "x", "y").unwrap_err());
    assert!(
        msg.contains("NaN") && msg.contains("row 1, column 0"),
        "{msg}"
    );
}

#[test]
fn bad_chart_input_is_an_error_that_says_what_is_wrong() {
    let x = [0f32, 1.0, 2.0];
    let ok = ("ok".to_string(), vec![0f32, 1.0, 0.5]);
    let msg = plot_message(line_chart(&[], std::slice::from_ref(&ok), "t", "x", "y").unwrap_err());
    assert!(msg.contains("no x values"), "{msg}");
    let msg = plot_message(line_chart(&x, &[], "t", "x", "y").unwrap_err());
    assert!(msg.contains("no series"), "{msg}");
    let ragged = ("dim 3".to_string(), vec![0f32, 1.0]);
    let msg = plot_message(line_chart(&x, &[ok.clone(), ragged], "t", "x", "y").unwrap_err());
    assert!(
        msg.contains("\"dim 3\" has 2 values") && msg.contains("3 x values"),
        "{msg}"
    );
    let nan = ("nan".to_string(), vec![0f32, f32::NAN, 0.5]);
    let msg = plot_message(line_chart(&x, &[nan], "t", "x", "y").unwrap_err());
    assert!(msg.contains("value 1") && msg.contains("NaN"), "{msg}");
    let msg =
        plot_message(line_chart(&[0.0, f32::INFINITY, 1.0], &[ok], "t", "x", "y").unwrap_err());
    assert!(msg.contains("x value 1 is inf"), "{msg}");

    let msg = plot_message(bar_chart(&[], "t", "y").unwrap_err());
    assert!(msg.contains("no bars"), "{msg}");
    let msg = plot_message(bar_chart(&[("slow".to_string(), f64::NAN)], "t", "y").unwrap_err());
    assert!(msg.contains("\"slow\"") && msg.contains("NaN"), "{msg}");

    let groups = vec!["256".to_string(), "1024".to_string()];
    let msg = plot_message(grouped_bar_chart(&[], &[], "t", "x", "y").unwrap_err());
    assert!(msg.contains("no groups"), "{msg}");
    let msg = plot_message(grouped_bar_chart(&groups, &[], "t", "x", "y").unwrap_err());
    assert!(msg.contains("no series"), "{msg}");
    let wrong = vec![("f32".to_string(), vec![1.0])];
    let msg = plot_message(grouped_bar_chart(&groups, &wrong, "t", "x", "y").unwrap_err());
    assert!(
        msg.contains("\"f32\" has 1 values") && msg.contains("2 groups"),
        "{msg}"
    );
    let inf = vec![("u8".to_string(), vec![1.0, f64::INFINITY])];
    let msg = plot_message(grouped_bar_chart(&groups, &inf, "t", "x", "y").unwrap_err());
    assert!(msg.contains("value 1 of series \"u8\" is inf"), "{msg}");
}

#[test]
fn single_points_constant_data_and_negative_bars_still_draw() {
    let fig = line_chart(
        &[3.0],
        &[("one".to_string(), vec![0.5])],
        "one point",
        "x",
        "y",
    )
    .unwrap();
    assert!(fig.svg().contains("<circle"));
    let flat = Tensor::zeros((3, 3), DType::F32, &Device::Cpu).unwrap();
    let fig = heatmap(&flat, "all zero", "x", "y").unwrap();
    assert_eq!(cells(fig.svg()).len(), 9);
    assert!(cells(fig.svg()).iter().all(|c| c.4 == DARK));
    let fig = bar_chart(
        &[("zero".to_string(), 0.0), ("neg".to_string(), -2.4)],
        "t",
        "y",
    )
    .unwrap();
    keep(&fig, "negative_bar");
    let (_, y, _) = texts(fig.svg())
        .into_iter()
        .find(|(_, _, t)| t == "-2.4")
        .unwrap();
    let bar = filled_rects(fig.svg())
        .into_iter()
        .find(|r| r.3 > 0)
        .unwrap();
    assert!(
        y >= bar.1 + bar.3,
        "a negative value is printed below its bar"
    );
    let one = Tensor::new(&[[-0.25f32]], &Device::Cpu).unwrap();
    let fig = heatmap(&one, "1 × 1", "x", "y").unwrap();
    keep(&fig, "one");
    assert_eq!(cells(fig.svg()).len(), 1);
    assert_eq!(
        count(fig.svg(), "-0.25"),
        2,
        "the cell and the colour bar's low end"
    );
}

#[test]
fn extreme_values_and_long_titles_still_draw_without_panicking() {
    let title = "a very long title that goes on and on ".repeat(20);
    let bars = [("big".to_string(), 1e100), ("small".to_string(), 2e99)];
    let fig = bar_chart(&bars, &title, "").unwrap();
    keep(&fig, "extreme_bars");
    // A huge value in scientific notation, above its bar and as a tick.
    assert_eq!(count(fig.svg(), "1e100"), 2);
    assert_eq!(count(fig.svg(), "2e99"), 2);
    let tiny = Tensor::new(&[[1e-30f64, 3e-30], [0.0, 2e-30]], &Device::Cpu).unwrap();
    let fig = heatmap(&tiny, "tiny", "x", "y").unwrap();
    keep(&fig, "extreme_heatmap");
    assert_eq!(cells(fig.svg()).len(), 4);
    assert_eq!(
        count(fig.svg(), "3e-30"),
        1,
        "the cell, in scientific notation"
    );
    let x = [0f32, 1e30];
    let fig = line_chart(
        &x,
        &[("s".to_string(), vec![-1e-20, 1e-20])],
        &title,
        "x",
        "y",
    )
    .unwrap();
    assert!(fig.svg().starts_with("<svg"));
}
