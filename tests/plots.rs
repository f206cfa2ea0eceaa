//! The lesson's pictures: heat maps, line charts and bar charts come out as inline SVG
//! with their (bilingual) text intact, annotate what they should, and reject bad input with
//! an error that says what is wrong.
//!
//! Set `UB_PLOTS_DIR=/some/dir` to also write every figure drawn here to that folder, for
//! looking at them.

use candle_core::{DType, Device, Tensor};
use understanding_buffers::display::Show;
use understanding_buffers::plots::{bar_chart, grouped_bar_chart, heatmap, line_chart, Figure};
use understanding_buffers::Error;

const INPUTS: [[f32; 3]; 6] = [
    [0.43, 0.15, 0.89],
    [0.55, 0.87, 0.66],
    [0.57, 0.85, 0.64],
    [0.22, 0.58, 0.33],
    [0.77, 0.25, 0.10],
    [0.05, 0.80, 0.55],
];

fn keep(fig: &Figure, name: &str) {
    if let Some(dir) = std::env::var_os("UB_PLOTS_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{name}.svg"));
        fig.save_svg(&path).expect("write the review copy");
    }
}

/// `triu(ones(n, n), diagonal=1)` as f32: 1 above the diagonal.
fn causal_mask(n: usize) -> Tensor {
    Tensor::tril2(n, DType::F32, &Device::Cpu)
        .and_then(|t| t.affine(-1.0, 1.0))
        .expect("mask")
}

/// The texts of the SVG's `<text>` elements, trimmed.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|chunk| {
            let start = chunk.find('>').expect("text tag closes") + 1;
            let end = chunk.find("</text>").expect("text element ends");
            chunk[start..end].trim().to_string()
        })
        .collect()
}

fn count(svg: &str, text: &str) -> usize {
    texts(svg).iter().filter(|t| *t == text).count()
}

fn plot_message(err: Error) -> String {
    match err {
        Error::Plot(msg) => msg,
        other => panic!("expected Error::Plot, got {other:?}"),
    }
}

/// Softmax-normalised causal attention weights of the lesson's six tokens, with the
/// inputs themselves as queries and keys.
fn attention_weights() -> Tensor {
    let x = Tensor::new(&INPUTS, &Device::Cpu).expect("inputs");
    let scores = (x.matmul(&x.t().unwrap()).unwrap() / 3f64.sqrt()).unwrap();
    let mask = causal_mask(6).to_dtype(DType::U8).unwrap();
    let neg_inf = Tensor::full(f32::NEG_INFINITY, (6, 6), &Device::Cpu).unwrap();
    let masked = mask.where_cond(&neg_inf, &scores).unwrap();
    candle_nn::ops::softmax_last_dim(&masked).unwrap()
}

#[test]
fn mask_heatmap_annotates_every_cell_with_its_value() {
    let title = "Causal mask before the round trip / 往返前的因果掩码";
    let fig = heatmap(
        &causal_mask(6),
        title,
        "key position / 键位置",
        "query position / 查询位置",
    )
    .unwrap();
    keep(&fig, "mask_before");
    let svg = fig.svg();
    assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains(title), "the full title is in the SVG");
    assert!(texts(svg).iter().any(|t| t.contains("往返前的因果掩码")));
    assert!(texts(svg).iter().any(|t| t.contains("键位置")));
    assert!(texts(svg).iter().any(|t| t.contains("查询位置")));
    assert_eq!(fig.title(), title);
    // 15 cells above the diagonal say 1 and 21 say 0; the column and row tick labels add
    // one "0" and one "1" each.
    assert_eq!(count(svg, "1"), 15 + 2);
    assert_eq!(count(svg, "0"), 21 + 2);
    // Every row and column index is a tick label.
    for i in 2..6 {
        assert_eq!(count(svg, &i.to_string()), 2, "tick {i}");
    }
    // The colour bar runs from 0 to 1.
    assert_eq!(count(svg, "0.0"), 1);
    assert_eq!(count(svg, "1.0"), 1);
}

#[test]
fn mask_after_round_trip_shows_twos() {
    let mask2 = (causal_mask(6) * 2.0).unwrap();
    let fig = heatmap(
        &mask2,
        "Causal mask after the round trip / 往返后的因果掩码",
        "key position / 键位置",
        "query position / 查询位置",
    )
    .unwrap();
    keep(&fig, "mask_after");
    // 15 annotations, plus the "2" tick on each axis.
    assert_eq!(count(fig.svg(), "2"), 15 + 2);
    assert_eq!(count(fig.svg(), "2.0"), 1, "the colour bar reaches 2");
}

#[test]
fn integer_masks_of_any_dtype_draw_the_same_picture() {
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
        let fig = heatmap(&t, "mask", "x", "y").unwrap();
        assert_eq!(fig, f32_fig, "{dtype:?}");
    }
}

#[test]
fn transposed_views_are_drawn_by_their_values() {
    let lower = causal_mask(6).t().unwrap();
    let fig = heatmap(&lower, "transposed", "x", "y").unwrap();
    let contiguous = heatmap(&lower.contiguous().unwrap(), "transposed", "x", "y").unwrap();
    assert_eq!(fig, contiguous);
    assert_ne!(
        fig,
        heatmap(&causal_mask(6), "transposed", "x", "y").unwrap()
    );
}

#[test]
fn attention_weights_show_the_causal_triangle() {
    let weights = attention_weights();
    let fig = heatmap(
        &weights,
        "Attention weights / 注意力权重",
        "key / 键",
        "query / 查询",
    )
    .unwrap();
    keep(&fig, "attention_weights");
    let svg = fig.svg();
    // Row 0 attends only to itself; the 15 masked cells are 0.
    assert_eq!(count(svg, "1"), 1 + 2);
    assert_eq!(count(svg, "0"), 15 + 2);
    let w = weights.to_vec2::<f32>().unwrap();
    let expected = format!("{:.2}", w[5][1]);
    let expected = expected.trim_end_matches('0');
    assert!(count(svg, expected) >= 1, "cell (5, 1) shows {expected}");
}

#[test]
fn masked_scores_with_infinities_are_drawn_not_rejected() {
    let x = Tensor::new(&INPUTS, &Device::Cpu).unwrap();
    let scores = x.matmul(&x.t().unwrap()).unwrap();
    let mask = causal_mask(6).to_dtype(DType::U8).unwrap();
    let neg_inf = Tensor::full(f32::NEG_INFINITY, (6, 6), &Device::Cpu).unwrap();
    let masked = mask.where_cond(&neg_inf, &scores).unwrap();
    let fig = heatmap(&masked, "Masked scores / 掩码后的分数", "key", "query").unwrap();
    keep(&fig, "masked_scores");
    assert_eq!(count(fig.svg(), "-inf"), 15);
}

#[test]
fn positional_encoding_table_has_no_annotations_and_diverging_colours() {
    let (positions, dims) = (50usize, 16usize);
    let mut table = vec![0f32; positions * dims];
    for p in 0..positions {
        for i in 0..dims / 2 {
            let angle = p as f32 / 10000f32.powf(2.0 * i as f32 / dims as f32);
            table[p * dims + 2 * i] = angle.sin();
            table[p * dims + 2 * i + 1] = angle.cos();
        }
    }
    let pe = Tensor::from_vec(table.clone(), (positions, dims), &Device::Cpu).unwrap();
    let fig = heatmap(
        &pe,
        "Sinusoidal positional encoding / 正弦位置编码",
        "dimension / 维度",
        "position / 位置",
    )
    .unwrap();
    keep(&fig, "pe_table");
    let svg = fig.svg();
    let all = texts(svg);
    // Title (one or two lines), two axis labels, ticks and colour bar: no per-cell text.
    assert!(all.len() < 60, "{} text elements", all.len());
    assert!(!all.iter().any(|t| t == "0.84"), "no annotations");
    // Positions are labelled every 5 rows; the colour bar is symmetric around 0.
    assert_eq!(count(svg, "45"), 1);
    assert_eq!(count(svg, "47"), 0);
    assert_eq!(count(svg, "-1.0"), 1);
    assert_eq!(count(svg, "1.0"), 1);
    assert!(
        svg.contains("#F7F7F7") || svg.contains("#F6F6F6") || svg.contains("#F8F8F8"),
        "white sits at 0 on the diverging scale"
    );

    // A few dimensions against position.
    let x: Vec<f32> = (0..positions).map(|p| p as f32).collect();
    let series: Vec<(String, Vec<f32>)> = [0usize, 1, 4, 5]
        .iter()
        .map(|&d| {
            let kind = if d % 2 == 0 { "sin" } else { "cos" };
            (
                format!("dim {d} ({kind}) / 维度 {d}"),
                (0..positions).map(|p| table[p * dims + d]).collect(),
            )
        })
        .collect();
    let fig = line_chart(
        &x,
        &series,
        "Positional encoding by dimension / 各维度的位置编码",
        "position / 位置",
        "value / 值",
    )
    .unwrap();
    keep(&fig, "pe_lines");
    let svg = fig.svg();
    assert!(svg.starts_with("<svg"));
    for (name, _) in &series {
        let english = name.split(" / ").next().unwrap();
        assert!(svg.contains(english), "legend shows {name}");
    }
    assert!(svg.contains("维度 5"));
    // One polyline through all 50 points per series (grid lines and ticks have 2 points).
    let curves = svg
        .split("<polyline")
        .skip(1)
        .filter(|el| {
            let points = el
                .split("points=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            points.split_whitespace().count() == positions
        })
        .count();
    assert_eq!(curves, series.len());
}

#[test]
fn bar_chart_prints_each_value_above_its_bar() {
    let bars = vec![
        ("buffer on device / 设备上的缓冲区".to_string(), 0.0213),
        ("rebuilt every call / 每次调用重建".to_string(), 0.0871),
        ("copied from CPU / 从 CPU 复制".to_string(), 0.4123),
    ];
    let title = "Mask cost per forward pass / 每次前向传播的掩码开销";
    let fig = bar_chart(&bars, title, "ms per call / 每次调用毫秒数").unwrap();
    keep(&fig, "bar_times");
    let svg = fig.svg();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains(title));
    for label in ["0.0213", "0.0871", "0.412"] {
        assert_eq!(count(svg, label), 1, "value {label}");
    }
    assert!(svg.contains("设备上的缓冲区"));
    assert!(svg.contains("从 CPU 复制"));
    // Three bars in three colours.
    for colour in ["#1F77B4", "#FF7F0E", "#2CA02C"] {
        assert!(svg.contains(colour), "{colour}");
    }
}

#[test]
fn grouped_bar_chart_shows_memory_as_context_grows() {
    let contexts = [256.0f64, 1024.0, 4096.0];
    let groups: Vec<String> = contexts.iter().map(|t| t.to_string()).collect();
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    let series = vec![
        (
            "f32 mask / f32 掩码".to_string(),
            contexts
                .iter()
                .map(|t| mib(t * t * 4.0))
                .collect::<Vec<_>>(),
        ),
        (
            "u8 mask / u8 掩码".to_string(),
            contexts.iter().map(|t| mib(t * t)).collect(),
        ),
        ("no mask / 无掩码".to_string(), vec![0.0; 3]),
    ];
    let fig = grouped_bar_chart(
        &groups,
        &series,
        "Mask memory as the context grows / 掩码内存随上下文增长",
        "context length / 上下文长度",
        "MiB",
    )
    .unwrap();
    keep(&fig, "bar_memory");
    let svg = fig.svg();
    assert!(svg.contains("上下文长度"));
    assert!(svg.contains("u8 掩码"));
    assert_eq!(count(svg, "64"), 1, "4096² f32 entries are 64 MiB");
    assert_eq!(count(svg, "16"), 1);
    assert_eq!(count(svg, "0.25"), 1, "256² f32 entries are 0.25 MiB");
    assert_eq!(count(svg, "4096"), 1, "group label");
}

#[test]
fn show_gives_inline_svg_html_and_a_one_line_summary() {
    let fig = heatmap(&causal_mask(4), "Mask / 掩码", "x", "y").unwrap();
    let (mime, html) = fig.rich();
    assert_eq!(mime, "text/html");
    assert!(html.starts_with("<div class=\"ub-figure\">"));
    assert!(html.trim_end().ends_with("</div>"));
    assert!(html.contains("<svg "));
    assert!(html.contains(fig.svg()));
    let plain = fig.plain();
    assert_eq!(
        plain,
        format!("[figure: Mask / 掩码, SVG {} bytes]", fig.svg().len())
    );
    assert!(!plain.contains('\n'));
}

#[test]
fn titles_are_escaped_in_the_svg() {
    let fig = bar_chart(&[("a < b".to_string(), 1.0)], "x < y & z", "v").unwrap();
    assert!(fig.svg().contains("x &lt; y &amp; z"));
    assert!(!fig.svg().contains("x < y"));
    assert_eq!(fig.title(), "x < y & z");
}

#[test]
fn save_svg_writes_the_document() {
    let fig = heatmap(&causal_mask(3), "Saved / 已保存", "x", "y").unwrap();
    let dir = std::env::temp_dir().join(format!("ub-plots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mask.svg");
    fig.save_svg(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), fig.svg());
    std::fs::remove_dir_all(&dir).unwrap();

    let err = fig
        .save_svg(dir.join("missing").join("mask.svg"))
        .unwrap_err();
    let msg = plot_message(err);
    assert!(msg.contains("mask.svg"), "{msg}");
}

#[test]
fn large_matrices_are_drawn_without_annotations_and_bounded_in_size() {
    let big = causal_mask(20);
    let fig = heatmap(&big, "20 x 20", "x", "y").unwrap();
    assert_eq!(count(fig.svg(), "1"), 0, "no annotations, ticks every 2");
    let huge = causal_mask(1024);
    let fig = heatmap(&huge, "1024 x 1024", "x", "y").unwrap();
    keep(&fig, "mask_1024");
    // Block-averaged to 128 x 128 and drawn as runs of equal colour: a small document.
    assert!(fig.svg().len() < 200_000, "{} bytes", fig.svg().len());
}

#[test]
fn bad_heatmap_input_is_an_error_that_says_what_is_wrong() {
    let batch = Tensor::zeros((2, 6, 6), DType::F32, &Device::Cpu).unwrap();
    let msg = plot_message(heatmap(&batch, "t", "x", "y").unwrap_err());
    assert!(msg.contains("2-D") && msg.contains("[2, 6, 6]"), "{msg}");

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
    let short = ("dim 3".to_string(), vec![0f32, 1.0]);
    let msg = plot_message(line_chart(&x, &[ok.clone(), short], "t", "x", "y").unwrap_err());
    assert!(
        msg.contains("\"dim 3\" has 2 values") && msg.contains("3 x values"),
        "{msg}"
    );
    let nan = ("nan".to_string(), vec![0f32, f32::NAN, 0.5]);
    let msg = plot_message(line_chart(&x, &[nan], "t", "x", "y").unwrap_err());
    assert!(msg.contains("value 1") && msg.contains("NaN"), "{msg}");
    let msg = plot_message(line_chart(&[0.0, f32::INFINITY], &[], "t", "x", "y").unwrap_err());
    assert!(msg.contains("no series"), "{msg}");

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
    assert!(msg.contains("\"1024\"") && msg.contains("inf"), "{msg}");
}

#[test]
fn single_points_and_constant_data_still_draw() {
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
    assert_eq!(count(fig.svg(), "0"), 9 + 2);
    let fig = bar_chart(
        &[("zero".to_string(), 0.0), ("neg".to_string(), -2.4)],
        "t",
        "y",
    )
    .unwrap();
    assert_eq!(count(fig.svg(), "-2.4"), 1);
}

#[test]
fn long_bilingual_labels_wrap_instead_of_running_off_the_picture() {
    let title = "Attention weights of the buffered module after loading the checkpoint / 加载检查点后带缓冲区模块的注意力权重";
    let y_label = "query position (the token that attends) / 查询位置（发出注意力的词元）";
    let fig = heatmap(
        &attention_weights(),
        title,
        "key position / 键位置",
        y_label,
    )
    .unwrap();
    keep(&fig, "long_labels");
    let all = texts(fig.svg());
    assert!(all.contains(
        &"Attention weights of the buffered module after loading the checkpoint".to_string()
    ));
    assert!(all.contains(&"加载检查点后带缓冲区模块的注意力权重".to_string()));
    assert!(all.contains(&"查询位置（发出注意力的词元）".to_string()));
    assert!(
        fig.svg().contains(title),
        "the <title> keeps the whole title"
    );
}

#[test]
fn sixteen_by_sixteen_is_annotated_when_the_text_fits_and_wide_matrices_fit() {
    let fig = heatmap(
        &causal_mask(16),
        "16 x 16 mask / 十六乘十六掩码",
        "key / 键",
        "query / 查询",
    )
    .unwrap();
    keep(&fig, "sixteen_mask");
    // 120 cells above the diagonal, plus the "1" tick on each axis.
    assert_eq!(count(fig.svg(), "1"), 120 + 2);
    // Two-decimal values would need a font too small to read in 16 × 16 cells: none.
    let t = Tensor::arange(0f32, 256.0, &Device::Cpu)
        .unwrap()
        .reshape((16, 16))
        .unwrap();
    let t = (t / 255.0).unwrap();
    let fig = heatmap(&t, "16 x 16 / 十六乘十六", "column / 列", "row / 行").unwrap();
    keep(&fig, "sixteen");
    assert_eq!(count(fig.svg(), "0.5"), 0);
    let wide = Tensor::arange(0f32, 24.0, &Device::Cpu)
        .unwrap()
        .reshape((2, 12))
        .unwrap();
    let fig = heatmap(&wide, "2 x 12 / 二乘十二", "column / 列", "row / 行").unwrap();
    keep(&fig, "wide");
    assert_eq!(count(fig.svg(), "23"), 1);
    let one = Tensor::new(&[[-0.25f32]], &Device::Cpu).unwrap();
    let fig = heatmap(&one, "1 x 1", "x", "y").unwrap();
    keep(&fig, "one");
    assert_eq!(
        count(fig.svg(), "-0.25"),
        2,
        "the cell and the colour bar's low end"
    );
}
