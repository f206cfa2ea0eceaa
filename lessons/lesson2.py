"""Lesson 2: buffers in practice, positional encodings. The source of
notebooks/{en,zh}/02-positional-encoding-buffers.ipynb and
examples/lesson2_positional_encoding_buffers.rs (scripts/notebooks.py builds them)."""

from cells import code, md

NAME = "02-positional-encoding-buffers"
EXAMPLE = "lesson2_positional_encoding_buffers"
TITLE = {"en": "Buffers in practice: positional encodings", "zh": "缓冲区实战：位置编码"}

CELLS = [
    md(
        en="""
# Buffers in practice: positional encodings

*中文版: [02-positional-encoding-buffers.ipynb](../zh/02-positional-encoding-buffers.ipynb)*

Lesson 1 showed what goes wrong when a tensor the module needs is not registered. This lesson
takes a second classic buffer, the sinusoidal positional-encoding table of the original
Transformer, and looks at everything a buffer does in practice: listing, casting, saving or not,
reproducibility, and what it would cost to do without one.
""",
        zh="""
# 缓冲区实战：位置编码

*English version: [02-positional-encoding-buffers.ipynb](../en/02-positional-encoding-buffers.ipynb)*

第 1 课展示了：模块需要的张量如果没有注册，会出什么问题。这一课换一个经典的缓冲区——原始 Transformer 中的
正弦位置编码（positional encoding）表，看看缓冲区在实践中要做的所有事情：列出、类型转换、保存或不保存、
可复现性，以及不用缓冲区要付出的代价。
""",
    ),
    code(':dep understanding-buffers = { path = "../.." }'),
    code(
        """
use understanding_buffers::prelude::*;
lesson_setup(); // readable panics, candle errors without backtraces
"""
    ),
    md(
        en="""
## 1. The table

`PE[pos, 2i] = sin(pos / 10000^(2i/d))` and `PE[pos, 2i+1] = cos(pos / 10000^(2i/d))`: each pair of
dimensions is a sine and a cosine of the position, at a wavelength that grows with the
dimension. It is fixed maths — nothing to learn — but the model adds it to every input, so it
must live on the model's device, in the model's dtype. Here are 50 positions of a 16-dimensional
model.
""",
        zh="""
## 1. 位置编码表

`PE[pos, 2i] = sin(pos / 10000^(2i/d))`，`PE[pos, 2i+1] = cos(pos / 10000^(2i/d))`：每两个维度是位置的一个正弦
和一个余弦，波长随维度增大。它是固定的数学公式，没有任何需要学习的东西；但模型会把它加到每个输入上，
所以它必须和模型在同一个设备上、用同一种数据类型。下面是 16 维模型的前 50 个位置。
""",
    ),
    code(
        """
let pe = sinusoidal_table(50, 16)?;
println!("{:?}", pe.dims());
println!("{}", TensorRepr(&pe.i((..4, ..6))?));
"""
    ),
    code(
        """
let positions: Vec<f32> = (0..50).map(|p| p as f32).collect();
let columns = pe.t()?.to_vec2::<f32>()?;
let curves: Vec<(String, Vec<f32>)> =
    [0, 1, 4, 5, 10].iter().map(|&d| (format!("dim {d}"), columns[d].clone())).collect();
plots::line_chart(&positions, &curves, "Positional encoding, a few dimensions / 位置编码的几个维度",
                  "position / 位置", "value / 取值")?.show();
"""
    ),
    code(
        """
plots::heatmap(&pe, "Sinusoidal positional-encoding table / 正弦位置编码表",
               "dimension / 维度", "position / 位置")?.show();
"""
    ),
    md(
        en="""
## 2. Parameters and buffers, listed apart

The model has a token embedding — a parameter, trained — and the table, registered as the buffer
`pe`. `named_parameters` and `named_buffers` list them apart; an optimizer is handed the
parameters only. (The embedding is initialised from a fixed seed so that this notebook prints the
same numbers everywhere.)
""",
        zh="""
## 2. 分别列出参数和缓冲区

模型有一个词元嵌入（token embedding）——它是参数，要训练——以及注册为缓冲区 `pe` 的位置编码表。
`named_parameters` 和 `named_buffers` 把两者分开列出；交给优化器的只有参数。
（嵌入层用固定的种子初始化，所以这个笔记本在任何机器上打印的数字都一样。）
""",
    ),
    code(
        """
let mut model = PositionalEncodingWithBuffer::new(1000, 16, 50, 0)?;
for (name, parameter) in model.named_parameters() {
    println!("parameter  {name}: {:?}", parameter.dims());
}
for (name, buffer) in model.named_buffers() {
    println!("buffer     {name}: {:?}", buffer.dims());
}
println!("state dict keys: {:?}", model.state_dict().keys().collect::<Vec<_>>());
"""
    ),
    md(
        en="""
## 3. The forward pass

Token ids of shape (batch, seq_len) become embeddings, and the first `seq_len` rows of the table
are added to them. Checked by hand: the result is exactly `embedding[ids] + pe[:seq_len]`.
""",
        zh="""
## 3. 前向传播

形状为 (batch, seq_len) 的词元 id 先变成嵌入向量，再加上位置编码表的前 `seq_len` 行。
手工核对一下：结果恰好等于 `embedding[ids] + pe[:seq_len]`。
""",
    ),
    code(
        """
let ids = Tensor::new(&[[5u32, 17, 42, 7, 99]], &Device::Cpu)?;
let out = model.forward(&ids)?;
println!("output shape: {:?}", out.dims());

let by_hand = (model.embedding.weight.index_select(&ids.flatten_all()?, 0)? + model.pe.narrow(0, 0, 5)?)?;
let difference = (out.squeeze(0)? - by_hand)?.abs()?.max_all()?.to_scalar::<f32>()?;
println!("largest difference from embedding[ids] + pe[:5]: {difference}");
"""
    ),
    md(
        en="""
## 4. Moves and casts follow the module

Converting the model to bfloat16 converts its floating-point buffers too (in PyTorch:
`model.to(torch.bfloat16)`, or `.half()` for float16). The table stays in step with the
embedding, and the forward pass works in bf16.
""",
        zh="""
## 4. 设备迁移和类型转换跟随模块

把模型转换成 bfloat16 时，它的浮点缓冲区也会一起转换（PyTorch 写法：`model.to(torch.bfloat16)`，
转 float16 则用 `.half()`）。位置编码表与嵌入层保持一致，前向传播以 bf16 运行。
""",
    ),
    code(
        """
model.to_dtype(DType::BF16)?;
println!("embedding.weight: {:?}", model.embedding.weight.dtype());
println!("pe:               {:?}", model.pe.dtype());
println!("output:           {:?}", model.forward(&ids)?.dtype());
"""
    ),
    md(
        en="""
Now the same model with the table kept in a plain field. Its definition differs in one line:
""",
        zh="""
再看同一个模型，只是把位置编码表放在普通字段里。两者的定义只差一行：
""",
    ),
    code('lesson_code::difference("PositionalEncodingWithBuffer", "PositionalEncodingWithPlainField")?.show();'),
    md(
        en="""
The cast converts the embedding but not the table, which stays f32 (highlighted):
""",
        zh="""
类型转换改变了嵌入层，却没有碰这张表，它仍然是 f32（高亮显示）：
""",
    ),
    code(
        """
let mut plain = PositionalEncodingWithPlainField::new(1000, 16, 50, 0)?;
plain.to_dtype(DType::BF16)?;
plain.diagnostics().show();
"""
    ),
    md(
        en="""
…and the forward pass fails with candle's own dtype-mismatch error: bf16 embeddings plus an f32
table. This is lesson 1's device mismatch in another guise, and it happens on every machine, GPU
or not.
""",
        zh="""
……于是前向传播失败，报出 candle 自己的数据类型不匹配错误：bf16 的嵌入加上 f32 的位置编码表。
这就是第 1 课设备不匹配问题的另一种面貌，而且在任何机器上都会出现，无论有没有 GPU。
""",
    ),
    code(
        """
match plain.forward(&ids) {
    Ok(out) => println!("{:?}", out.dtype()),
    Err(err) => show_error(&err),
};
""",
        tags=["intended-error"],
        expect=["dtype mismatch in add, lhs: BF16, rhs: F32"],
    ),
    md(
        en="""
Integer and byte buffers keep their dtype when a module is cast, as in PyTorch: a `u8` mask or an
`i64` counter would mean something else as floats. A module of your own gets all of this by
deriving `Module`: the field types say what each field is — here a small one, defined in this
notebook:
""",
        zh="""
与 PyTorch 一样，模块做类型转换时，整数和字节类型的缓冲区保持原来的类型：`u8` 掩码或 `i64` 计数器一旦变成浮点数，含义就变了。
你自己的模块只要派生 `Module`（`#[derive(Module)]`），就能获得上面这一切：字段的类型说明了每个字段是什么——下面就在笔记本里定义一个小模块：
""",
    ),
    code(
        """
#[derive(Module)]
struct Tagged {
    weight: Param,
    causal_u8: Buffer,
    steps: Buffer,
}

let mut tagged = Tagged {
    weight: Param::new(Tensor::ones((2, 2), DType::F32, &Device::Cpu)?)?,
    causal_u8: Buffer::new(causal_mask(4)?.to_dtype(DType::U8)?),
    steps: Buffer::new(Tensor::new(&[0i64], &Device::Cpu)?),
};
tagged.to_dtype(DType::F16)?;
tagged.diagnostics().show();
"""
    ),
    md(
        en="""
## 5. Persistent or not

A buffer declared with `#[module(persistent = false)]` (PyTorch:
`register_buffer(..., persistent=False)`) still moves and casts with the module, but it is left
out of the state dict. For a table that is pure maths that is often what you want: the
checkpoint gets smaller, and every new model recomputes the table in its constructor.
""",
        zh="""
## 5. 持久还是非持久

用 `#[module(persistent = false)]` 声明的缓冲区（PyTorch：`register_buffer(..., persistent=False)`）依然会随模块搬动设备、转换类型，但不会写进状态字典。对于纯数学计算出来的表，
这往往正合适：检查点文件更小，而每个新模型都会在构造函数里重新计算这张表。
""",
    ),
    code(
        """
lesson_code::difference("PositionalEncodingWithBuffer", "PositionalEncodingWithNonPersistentBuffer")?.show();
"""
    ),
    code(
        """
let persistent = PositionalEncodingWithBuffer::new(1000, 16, 50, 0)?;
let non_persistent = PositionalEncodingWithNonPersistentBuffer::new(1000, 16, 50, 0)?;
let dir = scratch_dir()?;
let models: [(&str, &dyn Module); 2] = [("persistent", &persistent), ("non-persistent", &non_persistent)];
for (label, m) in models {
    let path = dir.join(format!("pe_{label}.safetensors"));
    m.save(&path)?;
    let keys: Vec<String> = m.state_dict().keys().map(String::from).collect();
    println!("{label:>14}: keys {keys:?}, file {} bytes", std::fs::metadata(&path)?.len());
}
println!("the table itself: 50 × 16 f32 values = {} bytes", 50 * 16 * 4);
"""
    ),
    code(
        """
let mut restored = PositionalEncodingWithNonPersistentBuffer::new(1000, 16, 50, 1)?;
restored.load(dir.join("pe_non-persistent.safetensors"), true)?;
let same_embedding = restored.embedding.weight.to_vec2::<f32>()? == non_persistent.embedding.weight.to_vec2::<f32>()?;
let table_recomputed = restored.pe.to_vec2::<f32>()? == sinusoidal_table(50, 16)?.to_vec2::<f32>()?;
println!("embedding loaded from the file: {same_embedding}");
println!("pe recomputed by the constructor: {table_recomputed}");
"""
    ),
    md(
        en="""
## 6. Reproducibility

A buffer drawn at random — a fixed random projection, say — must come back exactly as it was, or
the reloaded model is a different model. Saved with the module, it returns bit for bit:
""",
        zh="""
## 6. 可复现性

随机生成的缓冲区（比如一个固定的随机投影矩阵）必须原样恢复，否则重新加载的模型就成了另一个模型。
随模块一起保存后，它可以逐位不差地恢复：
""",
    ),
    code(
        """
#[derive(Module)]
struct RandomProjection {
    projection: Buffer,
}

let random = RandomProjection { projection: Buffer::new(Tensor::randn(0f32, 1.0, (16, 4), &Device::Cpu)?) };
random.save(dir.join("random_buffer.pth"))?;

let mut reloaded = RandomProjection { projection: Buffer::new(Tensor::zeros((16, 4), DType::F32, &Device::Cpu)?) };
reloaded.load(dir.join("random_buffer.pth"), true)?;

fn bits(t: &Tensor) -> Result<Vec<u32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?.iter().map(|x| x.to_bits()).collect())
}
println!("identical bit for bit: {}", bits(&random.projection)? == bits(&reloaded.projection)?);
"""
    ),
    md(
        en="""
## 7. Why not rebuild the tensor in every forward pass?

One could avoid the whole question by building the mask inside `forward`, or by keeping it on
the CPU and copying it over on every call. The cell below measures one forward pass of causal
attention (batch 4, 128 tokens, d = 32) with each choice on this machine's best device. On a CPU
the copy costs nothing (there is nowhere to copy to); on a GPU it is a host-to-device transfer on
every call. Times vary from run to run.
""",
        zh="""
## 7. 为什么不在每次前向传播时重新构建张量？

也可以绕开这个问题：在 `forward` 里现场构建掩码，或者把掩码放在 CPU 上、每次调用时再复制过去。
下面的单元格在本机最合适的设备上，分别按这几种做法测量一次因果注意力前向传播（批大小 4、128 个词元、d = 32）的耗时。
在 CPU 上“复制”不花任何代价（没有别的设备可复制）；在 GPU 上，每次调用都是一次从主机到设备的传输。
每次运行的时间会有波动。
""",
    ),
    code(
        """
let device = best_device();
let mut timings = Vec::new();
for strategy in cost::MaskStrategy::ALL {
    let ms = cost::forward_time_ms(strategy, 4, 128, 32, 10, &device)?;
    println!("{:<45} {ms:8.3} ms", strategy.label());
    timings.push((strategy.label().to_string(), ms));
}
plots::bar_chart(&timings, &format!("One forward pass on {} / 一次前向传播的耗时", device_name(&device)),
                 "milliseconds / 毫秒")?.show();
""",
        tags=["nondeterministic"],
    ),
    md(
        en="""
A buffer costs memory instead: a `T × T` mask grows with the square of the context. Stored as
f32 it takes 4 bytes per entry, as u8 one byte; a fused attention kernel that derives causality
from the indices stores none.
""",
        zh="""
缓冲区的代价则是内存：`T × T` 的掩码随上下文长度的平方增长。以 f32 存储每个元素占 4 字节，以 u8 存储占 1 字节；
而从下标直接推导因果关系的融合注意力内核则完全不需要存储掩码。
""",
    ),
    code(
        """
let contexts = [1024usize, 4096, 16384, 32768];
fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
println!("{:>8} {:>12} {:>12} {:>8}", "context", "f32 (MiB)", "u8 (MiB)", "none");
for &n in &contexts {
    println!("{n:>8} {:>12.1} {:>12.1} {:>8.1}",
             mib(cost::mask_bytes(n, Some(DType::F32))), mib(cost::mask_bytes(n, Some(DType::U8))),
             mib(cost::mask_bytes(n, None)));
}
let groups: Vec<String> = contexts.iter().map(|n| n.to_string()).collect();
let series: Vec<(String, Vec<f64>)> = [("f32 mask / f32 掩码", Some(DType::F32)), ("u8 mask / u8 掩码", Some(DType::U8)),
                                        ("no mask / 不存掩码", None)]
    .iter()
    .map(|(name, dtype)| (name.to_string(), contexts.iter().map(|&n| mib(cost::mask_bytes(n, *dtype))).collect()))
    .collect();
plots::grouped_bar_chart(&groups, &series, "Memory of a causal-mask buffer / 因果掩码缓冲区占用的内存",
                         "context length / 上下文长度", "MiB")?.show();
"""
    ),
    md(
        en="""
## 8. Best practices

- **Register** every tensor the forward pass needs and that belongs to the model but is not
  trained: masks, position tables, running statistics, fixed random projections.
- Make it **non-persistent** when it is cheap to recompute and large, or derived from
  configuration the constructor already has; keep it **persistent** when it carries state (running
  statistics, a random draw) that a checkpoint must restore.
- Keep a **plain field** only for what is not the model's: a cache you rebuild on purpose, a value
  the caller owns. Plain fields are not moved, cast or saved.
- **Name** buffers as PyTorch code would (`mask`, `pe`, `running_mean`), so that checkpoints keep the
  same keys on both sides.
- When a forward pass fails with a device or dtype mismatch, look first for a tensor in a plain
  field: `diagnostics()` lists every tensor with its device and dtype.
""",
        zh="""
## 8. 最佳实践

- 凡是前向传播需要、属于模型但不参与训练的张量，都要**注册**成缓冲区：掩码、位置编码表、运行统计量、固定的随机投影。
- 如果它体积大、重新计算又便宜，或者完全由构造函数已有的配置推导而来，就设为**非持久**；如果它承载着检查点必须恢复的状态
  （运行统计量、一次随机抽样的结果），就保持**持久**。
- 只有不属于模型的东西才放在**普通字段**里：有意重建的缓存、调用者自己持有的值。普通字段不会被搬动、转换或保存。
- 缓冲区的**命名**与 PyTorch 代码保持一致（`mask`、`pe`、`running_mean`），这样两边检查点里的键就相同。
- 前向传播报设备或数据类型不匹配时，先找找是不是有张量放在普通字段里：`diagnostics()` 会列出每个张量的设备和数据类型。
""",
    ),
]
