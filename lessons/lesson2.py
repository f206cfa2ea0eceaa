"""Lesson 2: buffers in practice, positional encodings. The source of
notebooks/{en,zh}/02-positional-encoding-buffers.ipynb and
examples/lesson2_positional_encoding_buffers.rs (scripts/notebooks.py builds them).

It follows a widely read Chinese article on why `register_buffer` beats a plain attribute,
point by point; where the article is wrong (gradients), the lesson says so and shows it."""

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
follows a widely read Chinese article on why `register_buffer` beats a plain attribute, and its
example: a model that adds a sinusoidal positional-encoding table, the one of the original
Transformer, to its token embeddings. Point by point: the table and the model;
`named_parameters` and `named_buffers`; moving to a device and back; gradients; casts;
persistent or not; the same numbers as PyTorch; a table computed in the constructor and then
overwritten by a load; the lazy `None` buffer; reproducibility; what rebuilding the tensor in
every forward pass would cost; and best practices, naming included.
""",
        zh="""
# 缓冲区实战：位置编码

*English version: [02-positional-encoding-buffers.ipynb](../en/02-positional-encoding-buffers.ipynb)*

第 1 课展示了：模块需要的张量如果没有注册，会出什么问题。这一课跟着一篇流传很广的中文文章走。那篇文章讲的是为什么 `register_buffer` 比普通属性好，用的例子是一个模型：它把原始 Transformer 的正弦位置编码表加到词元嵌入上。我们逐条来看：位置编码表和模型；`named_parameters` 与 `named_buffers`；移到设备上再移回来；梯度；类型转换；持久与非持久；与 PyTorch 的数值一致性；在构造函数里算好的表被加载覆盖；惰性的 `None` 缓冲区；可复现性；每次前向传播都重建张量的代价；最后是最佳实践，包括命名。
""",
    ),
    code(':dep understanding-buffers = { path = "../.." }'),
    code(
        """
use understanding_buffers::prelude::*;
let language = lesson_setup(); // the notebook's language, readable panics, candle errors without backtraces
"""
    ),
    md(
        en="""
## 1. The table

`PE[pos, 2i] = sin(pos / 10000^(2i/d))` and `PE[pos, 2i+1] = cos(pos / 10000^(2i/d))`: each pair of
dimensions is a sine and a cosine of the position, at a wavelength that grows with the
dimension. It is fixed maths, with nothing to learn, but the model adds it to every input, so it
must live on the model's device, in the model's dtype. The crate computes it like this, each
angle in f64, rounded once to f32:
""",
        zh="""
## 1. 位置编码表

`PE[pos, 2i] = sin(pos / 10000^(2i/d))`，`PE[pos, 2i+1] = cos(pos / 10000^(2i/d))`：每两个维度是位置的一个正弦和一个余弦，波长随维度增大。它是固定的数学公式，没有任何需要学习的东西；但模型会把它加到每个输入上，所以它必须和模型在同一个设备上、用同一种数据类型。crate 是这样计算它的：每个角度先用 f64 计算，最后一次性舍入为 f32。
""",
    ),
    code('lesson_code::snippet("sinusoidal_table")?.show();'),
    md(
        en="""
Here are 50 positions of a 16-dimensional model: the shape, the first rows and columns, a few
dimensions against the position, and the whole table.
""",
        zh="""
下面是 16 维模型的前 50 个位置：先看形状和左上角的几个值，再看几个维度随位置的变化，最后是整张表。
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
let curves: Vec<(String, Vec<f32>)> = [0, 1, 4, 5, 10]
    .iter()
    .map(|&d| (format!("{} {d}", tr("dim", "维度")), columns[d].clone()))
    .collect();
plots::line_chart(&positions, &curves, tr("Positional encoding, a few dimensions", "位置编码的几个维度"),
                  tr("position", "位置"), tr("value", "取值"))?.show();
"""
    ),
    code(
        """
plots::heatmap(&pe, tr("Sinusoidal positional-encoding table", "正弦位置编码表"),
               tr("dimension", "维度"), tr("position", "位置"))?.show();
"""
    ),
    md(
        en="""
## 2. The model

The article's model: a token embedding, which is a parameter and is trained, plus the table
registered as the buffer `pe` (PyTorch: `self.register_buffer("pe", pe)`). The forward pass adds
the first `seq_len` rows of the table to the embeddings. In the crate the field's type, `Buffer`,
does the registering:
""",
        zh="""
## 2. 模型

文章里的模型由两部分组成：一个词元嵌入（token embedding），它是参数，要训练；以及注册为缓冲区 `pe` 的位置编码表（PyTorch 写作 `self.register_buffer("pe", pe)`）。前向传播把表的前 `seq_len` 行加到嵌入向量上。在 crate 里，注册这件事由字段的类型 `Buffer` 完成：
""",
    ),
    code('lesson_code::snippet("PositionalEncodingWithBuffer")?.show();'),
    md(
        en="""
Token ids of shape (batch, seq_len) go in. Checked by hand, the result is exactly
`embedding[ids] + pe[:seq_len]`. (The embedding is initialised from a fixed seed, so this notebook
prints the same numbers everywhere.)
""",
        zh="""
输入是形状为 (batch, seq_len) 的词元 id。手工核对一下：结果恰好等于 `embedding[ids] + pe[:seq_len]`。（嵌入层用固定的种子初始化，所以这个笔记本在任何机器上打印的数字都一样。）
""",
    ),
    code(
        """
let mut model = PositionalEncodingWithBuffer::new(1000, 16, 50, 0)?;
let ids = Tensor::new(&[[5u32, 17, 42, 7, 99]], &Device::Cpu)?;
let out = model.forward(&ids)?;
println!("{}{:?}", tr("output shape: ", "输出的形状："), out.dims());

let by_hand = (model.embedding.weight.index_select(&ids.flatten_all()?, 0)? + model.pe.narrow(0, 0, 5)?)?;
let difference = (out.squeeze(0)? - by_hand)?.abs()?.max_all()?.to_scalar::<f32>()?;
println!("{}{difference}", tr("largest difference from `embedding[ids] + pe[:5]`: ", "与 `embedding[ids] + pe[:5]` 的最大差值："));
"""
    ),
    md(
        en="""
## 3. Parameters and buffers, listed apart

`named_parameters` lists what is trained, `named_buffers` what is not. An optimizer is handed
`parameters()`, the tensors of `named_parameters`, so it never touches the table. The state dict
holds both, in PyTorch's order: the module's own buffers first, then its children's tensors.
""",
        zh="""
## 3. 分别列出参数和缓冲区

`named_parameters` 列出要训练的张量，`named_buffers` 列出不训练的张量。交给优化器的是 `parameters()`，也就是 `named_parameters` 里的那些张量，所以优化器永远碰不到这张表。状态字典则两者都有，顺序与 PyTorch 相同：先是模块自己的缓冲区，再是子模块的张量。
""",
    ),
    code(
        """
let parameters: Vec<(String, Vec<usize>)> =
    model.named_parameters().into_iter().map(|(name, p)| (name, p.dims().to_vec())).collect();
let buffers: Vec<(String, Vec<usize>)> =
    model.named_buffers().into_iter().map(|(name, b)| (name, b.dims().to_vec())).collect();
println!("named_parameters(): {parameters:?}");
println!("named_buffers():    {buffers:?}");
println!("state_dict():       {:?}", model.state_dict().keys().collect::<Vec<_>>());
"""
    ),
    md(
        en="""
## 4. To a device and back

The article's point about devices: `model.cuda()` moves the parameters and the buffers to the GPU,
`model.cpu()` brings them back, and a tensor kept as a plain attribute stays where it was. Here
are the model with the table as a buffer and the same model with the table in a plain field
(their definitions differ in that one line, step 6 shows it), moved with
`to_device(&best_device())` (PyTorch: `model.cuda()`, or `model.to(device)`) and back with
`to_device(&Device::Cpu)` (PyTorch: `model.cpu()`):
""",
        zh="""
## 4. 移到设备上再移回来

文章关于设备的论点：`model.cuda()` 把参数和缓冲区都移到 GPU 上，`model.cpu()` 再把它们移回来；而作为普通属性保存的张量原地不动。下面是两个模型：一个把表注册为缓冲区，另一个把表放在普通字段里（两者的定义只差这一行，第 6 步会展示）。先用 `to_device(&best_device())` 把它们移到最合适的设备上（PyTorch 写作 `model.cuda()` 或 `model.to(device)`），再用 `to_device(&Device::Cpu)` 移回 CPU（PyTorch 写作 `model.cpu()`）：
""",
    ),
    code(
        """
let device = best_device();
if device.is_cpu() {
    println!("{}", tr(
        "This machine has no GPU: best_device() is the CPU, so nothing below moves. On a GPU the column \\
         after to_device(&best_device()) would read cuda:0 for `embedding.weight` and for the buffer `pe`, but cpu \\
         for the plain field `pe`, highlighted: it stays where it was. After to_device(&Device::Cpu) every tensor \\
         is on cpu again.",
        "本机没有 GPU：best_device() 返回的是 CPU，所以下面没有任何张量会被移到别处。换成 GPU，在 to_device(&best_device()) 之后那一列里，\\
         `embedding.weight` 和缓冲区 `pe` 都会是 cuda:0，普通字段 `pe` 却仍是 cpu，并且高亮显示：它留在了原处。\\
         to_device(&Device::Cpu) 之后，所有张量又都回到 cpu 上。"));
}
let mut buffered = PositionalEncodingWithBuffer::new(1000, 16, 50, 0)?;
let mut plain = PositionalEncodingWithPlainField::new(1000, 16, 50, 0)?;
let mut places = Table::new(tr("Where each tensor is", "每个张量所在的设备"), &[
    (tr("model", "模型"), Column::Code),
    (tr("tensor", "张量"), Column::Code),
    (tr("kind", "类别"), Column::Text),
    (tr("after to_device(&best_device())", "to_device(&best_device()) 之后"), Column::Code),
    (tr("after to_device(&Device::Cpu)", "to_device(&Device::Cpu) 之后"), Column::Code),
]);
for model in [&mut buffered as &mut dyn Module, &mut plain] {
    model.to_device(&device)?; // PyTorch: model.cuda()
    let there = model.diagnostics();
    model.to_device(&Device::Cpu)?; // PyTorch: model.cpu()
    let back = model.diagnostics();
    for (row, row_back) in there.rows().iter().zip(back.rows()) {
        let cells = [model.type_name().to_string(), row.name.clone(), kind_name(row.kind).to_string(),
                     row.device().unwrap_or_default().to_string(), row_back.device().unwrap_or_default().to_string()];
        if row.device() == Some(there.device()) {
            places.row(cells);
        } else {
            places.highlighted_row(cells, tr("<- stayed where it was", "<- 留在了原处"));
        }
    }
}
places.show();
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
## 5. Gradients

The article warns that a tensor kept as a plain attribute may be taken for a parameter and get
gradients. That does not happen, in PyTorch or here. In PyTorch (2.15; `bench/make_positional.py`
asserts it each time it writes this lesson's fixtures), after `backward()` a plain tensor
attribute made the usual way (without `requires_grad=True`) has `.grad` `None` and
`requires_grad` `False`, exactly like a registered buffer; only the parameter gets a gradient.
The same backward pass through both models, each built anew in its cell:
""",
        zh="""
## 5. 梯度

文章担心：作为普通属性保存的张量可能被当成参数，从而得到梯度。这种情况不会发生，PyTorch 里不会，这里也不会。在 PyTorch（2.15）中，`bench/make_positional.py` 每次生成本课的参考文件时都会断言这一点：`backward()` 之后，按通常方式创建的普通张量属性（没有设置 `requires_grad=True`）的 `.grad` 是 `None`，`requires_grad` 是 `False`，和注册过的缓冲区完全一样；只有参数才有梯度。下面让两个模型各做一次同样的反向传播，每个模型都在自己的单元格里重新创建：
""",
    ),
    code(
        """
// Built in this cell, with their input: a backward pass only goes through tensors made in
// the cell that runs it (lesson 1, step 1 says why).
let ids = Tensor::new(&[[5u32, 17, 42, 7, 99]], &Device::Cpu)?;
let with_buffer = PositionalEncodingWithBuffer::new(1000, 16, 50, 0)?;
with_buffer.gradients(&with_buffer.forward(&ids)?.sum_all()?)?.show();
"""
    ),
    code(
        """
let ids = Tensor::new(&[[5u32, 17, 42, 7, 99]], &Device::Cpu)?;
let with_plain_field = PositionalEncodingWithPlainField::new(1000, 16, 50, 0)?;
with_plain_field.gradients(&with_plain_field.forward(&ids)?.sum_all()?)?.show();
"""
    ),
    md(
        en="""
In both models only `embedding.weight` gets a gradient. So gradients are no reason to prefer a
buffer. The reasons are the three things a plain field misses: the move to the model's device
(step 4), the cast to its dtype (step 6) and the checkpoint (step 7).
""",
        zh="""
两个模型里都只有 `embedding.weight` 得到了梯度。所以梯度不是选择缓冲区的理由。真正的理由是普通字段做不到的三件事：随模型移到它的设备上（第 4 步），随模型转换数据类型（第 6 步），以及写进检查点（第 7 步）。
""",
    ),
    md(
        en="""
## 6. Casts follow the module too

Converting the model to bfloat16 converts its floating-point buffers too (in PyTorch:
`model.to(torch.bfloat16)`, or `.half()` for float16). The table stays in step with the
embedding, and the forward pass works in bf16.
""",
        zh="""
## 6. 类型转换也跟随模块

把模型转换成 bfloat16 时，它的浮点缓冲区也会一起转换（PyTorch 写作 `model.to(torch.bfloat16)`，转成 float16 则用 `.half()`）。位置编码表与嵌入层保持一致，前向传播以 bf16 运行。
""",
    ),
    code(
        """
model.to_dtype(DType::BF16)?;
println!("embedding.weight: {:?}", model.embedding.weight.dtype());
println!("pe: {:?}", model.pe.dtype());
println!("{}{:?}", tr("output: ", "输出："), model.forward(&ids)?.dtype());
"""
    ),
    md(
        en="""
Now the model with the table kept in a plain field. Its definition differs in one line (as in
lesson 1, the diff reads the first model's name as the second's, so the `impl` line is shared):
""",
        zh="""
再看把位置编码表放在普通字段里的模型。两者的定义只差一行（和第 1 课一样，差异对比把第一个模型的名字按第二个模型的名字看待，所以两者共用同一行 `impl`）：
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
……于是前向传播失败，报出 candle 自己的数据类型不匹配错误：`dtype mismatch in add, lhs: BF16, rhs: F32` 的意思是，加法的左操作数（bf16 的嵌入）和右操作数（f32 的位置编码表）数据类型不同。这就是第 1 课设备不匹配问题的另一种面貌，而且在任何机器上都会出现，无论有没有 GPU。
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
deriving `Module`: the field types say what each field is. Here is a small one, defined in this
notebook:
""",
        zh="""
与 PyTorch 一样，模块做类型转换时，整数和字节类型的缓冲区保持原来的类型：`u8` 掩码或 `i64` 计数器一旦变成浮点数，含义就变了。你自己的模块只要派生 `Module`（`#[derive(Module)]`），就能获得上面这一切：字段的类型说明了每个字段是什么。下面就在笔记本里定义一个小模块：
""",
    ),
    code(
        """
#[derive(Module)]
struct MixedDtypes {
    weight: Param,
    causal_u8: Buffer,
    steps: Buffer,
}

let mut mixed = MixedDtypes {
    weight: Param::new(Tensor::ones((2, 2), DType::F32, &Device::Cpu)?)?,
    causal_u8: Buffer::new(causal_mask(4)?.to_dtype(DType::U8)?),
    steps: Buffer::new(Tensor::new(&[0i64], &Device::Cpu)?),
};
mixed.to_dtype(DType::F16)?;
mixed.diagnostics().show();
"""
    ),
    md(
        en="""
## 7. Persistent or not

A buffer declared with `#[module(persistent = false)]` (PyTorch:
`register_buffer(..., persistent=False)`) still moves and casts with the module, but it is left
out of the state dict. For a table that is pure maths that is often what you want: the
checkpoint gets smaller, and every new model recomputes the table in its constructor.
""",
        zh="""
## 7. 持久还是非持久

用 `#[module(persistent = false)]` 声明的缓冲区（PyTorch 写作 `register_buffer(..., persistent=False)`）依然会随模块移到别的设备、转换类型，但不会写进状态字典。对于纯数学计算出来的表，这往往正合适：检查点文件更小，而每个新模型都会在构造函数里重新计算这张表。
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
let mut files = Table::new(tr("The two models saved", "两个模型的检查点"), &[
    (tr("model", "模型"), Column::Code),
    (tr("state dict keys", "状态字典的键"), Column::Code),
    (tr("file size (bytes)", "文件大小（字节）"), Column::Number),
]);
for (label, m) in [("persistent", &persistent as &dyn Module), ("non_persistent", &non_persistent)] {
    let path = dir.join(format!("pe_{label}.safetensors"));
    m.save(&path)?;
    let keys: Vec<String> = m.state_dict().keys().map(String::from).collect();
    files.row([m.type_name().to_string(), format!("{keys:?}"), std::fs::metadata(&path)?.len().to_string()]);
}
let table_bytes = persistent.pe.elem_count() * persistent.pe.dtype().size_in_bytes();
println!("{}", match language {
    Language::English => format!("the table itself: 50 × 16 f32 values = {table_bytes} bytes"),
    Language::Chinese => format!("位置编码表本身：50 × 16 个 f32 值，共 {table_bytes} 字节"),
});
files.show();
"""
    ),
    md(
        en="""
A fresh non-persistent model, built with another seed, loads the file: the embedding comes from
the file, the table from the constructor.
""",
        zh="""
用另一个种子新建一个非持久模型，再加载这个文件：嵌入层的权重来自文件，位置编码表来自构造函数。
""",
    ),
    code(
        """
let mut restored = PositionalEncodingWithNonPersistentBuffer::new(1000, 16, 50, 1)?;
restored.load(dir.join("pe_non_persistent.safetensors"), true)?;
let same_embedding = restored.embedding.weight.to_vec2::<f32>()? == non_persistent.embedding.weight.to_vec2::<f32>()?;
let table_recomputed = restored.pe.to_vec2::<f32>()? == sinusoidal_table(50, 16)?.to_vec2::<f32>()?;
println!("{}{same_embedding}", tr("`embedding.weight` is the file's: ", "`embedding.weight` 来自文件："));
println!("{}{table_recomputed}", tr("`pe` is the constructor's: ", "`pe` 由构造函数重新计算："));
"""
    ),
    md(
        en="""
## 8. The same numbers as PyTorch

Does candle's table match PyTorch's? `bench/make_positional.py` builds the article's model in
PyTorch 2.15, computing the table in float32 the usual PyTorch way, and saves it with
`torch.save(model.state_dict(), path)`: once at the article's size (`d_model = 8`,
`max_seq_len = 6`) and once at this lesson's (16 dimensions, 50 positions). The files are in
`data/reference/`. Each one's `pe` against `sinusoidal_table` of the same size:
""",
        zh="""
## 8. 与 PyTorch 的数值一致性

candle 算出的表和 PyTorch 的一样吗？`bench/make_positional.py` 用 PyTorch 2.15 构建文章里的模型，按 PyTorch 常见的写法用 float32 计算这张表，再用 `torch.save(model.state_dict(), path)` 保存：一次用文章的尺寸（`d_model = 8`，`max_seq_len = 6`），一次用本课的尺寸（16 维，50 个位置）。文件放在 `data/reference/` 里。下面把每个文件里的 `pe` 与同样尺寸的 `sinusoidal_table` 逐个比较：
""",
    ),
    code(
        """
let mut comparison = Table::new(tr("candle's table against PyTorch's", "candle 的位置编码表与 PyTorch 的对比"), &[
    (tr("file", "文件"), Column::Code),
    (tr("keys", "键"), Column::Code),
    ("d_model", Column::Number),
    ("max_seq_len", Column::Number),
    (tr("largest absolute difference", "最大绝对差"), Column::Number),
]);
for (d_model, max_seq_len) in [(8, 6), (16, 50)] {
    let name = format!("pytorch_pe_d{d_model}_len{max_seq_len}.pth");
    let saved = checkpoint::load(reference_file(&name), &Device::Cpu)?;
    let pytorch = saved.get("pe").expect("PyTorch saved the buffer pe");
    let candle = sinusoidal_table(max_seq_len, d_model)?;
    let largest = (&candle - pytorch)?.abs()?.max_all()?.to_scalar::<f32>()?;
    let keys: Vec<&str> = saved.keys().collect();
    comparison.row([name.clone(), format!("{keys:?}"), d_model.to_string(), max_seq_len.to_string(), format!("{largest:.2e}")]);
    if d_model == 8 {
        println!("{}", tr("row 5 of the article's table:", "文章那张表的第 5 行："));
        println!("  candle:  {:.8?}", candle.get(5)?.to_vec1::<f32>()?);
        println!("  PyTorch: {:.8?}", pytorch.get(5)?.to_vec1::<f32>()?);
    }
}
comparison.show();
"""
    ),
    md(
        en="""
The tables agree to within 1e-6. What differences there are come from rounding: PyTorch computes
the angles in float32, the crate in f64 with a single rounding at the end (step 1). In row 5 of
the article's table only the third value differs, in its last digit. The longer table differs
more, because the rounding error of a float32 angle grows with the angle, and so with the
position. Both files have the crate's keys, `pe` and `embedding.weight`, so they load into the
crate's model as they are (next step).
""",
        zh="""
两张表的差距在 1e-6 以内。仅有的差异来自舍入：PyTorch 用 float32 计算角度，crate 用 f64 计算，只在最后舍入一次（见第 1 步）。文章那张表的第 5 行只有第三个值不同，差在最后一位。较长的表差得多一些，因为 float32 角度的舍入误差随角度增大，也就是随位置增大。两个文件的键 `pe` 和 `embedding.weight` 与 crate 的一致，所以能原样加载到 crate 的模型里（见下一步）。
""",
    ),
    md(
        en="""
## 9. Computed in the constructor, then overwritten by the load

The article raises a fair question about a persistent table: the constructor computes it, and
loading a checkpoint then replaces it with the saved one. Which one does the model end up with,
and was computing it wasted? Both happen, in that order, and the load wins. Here the
constructor computes candle's table, and loading PyTorch's file replaces it:
""",
        zh="""
## 9. 构造函数算好的表，被加载覆盖

对持久的表，文章提了一个很实际的问题：构造函数先把表算好，加载检查点时又用保存的表把它替换掉。模型最后用的是哪一张？先算的那一遍是不是白算了？两件事都会发生，顺序如上，最终以加载的为准。下面由构造函数算出 candle 的表，再加载 PyTorch 的文件把它替换掉：
""",
    ),
    code(
        """
fn bits(t: &Tensor) -> Result<Vec<u32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?.iter().map(|x| x.to_bits()).collect())
}

let path = reference_file("pytorch_pe_d16_len50.pth");
let mut from_file = PositionalEncodingWithBuffer::new(100, 16, 50, 1)?; // the constructor computes the table
let built = from_file.pe.flatten_all()?.to_vec1::<f32>()?;
from_file.load(&path, true)?; // the load replaces it with the saved one
let loaded = from_file.pe.flatten_all()?.to_vec1::<f32>()?;

let saved = checkpoint::load(&path, &Device::Cpu)?;
let same_as_file = bits(&from_file.pe)? == bits(saved.get("pe").expect("PyTorch saved the buffer pe"))?;
let changed = built.iter().zip(&loaded).filter(|(a, b)| a != b).count();
let k = (0..built.len()).max_by(|&i, &j| (built[i] - loaded[i]).abs().total_cmp(&(built[j] - loaded[j]).abs())).unwrap_or(0);
match language {
    Language::English => {
        println!("{:.9}  `pe[{}, {}]` computed by the constructor", built[k], k / 16, k % 16);
        println!("{:.9}  `pe[{}, {}]` after the load", loaded[k], k / 16, k % 16);
        println!("values the load changed: {changed} of {}", built.len());
    }
    Language::Chinese => {
        println!("{:.9}  构造函数算出的 `pe[{}, {}]`", built[k], k / 16, k % 16);
        println!("{:.9}  加载之后的 `pe[{}, {}]`", loaded[k], k / 16, k % 16);
        println!("加载改动的值：{} 个中的 {changed} 个", built.len());
    }
}
println!("{}{same_as_file}", tr("the table is now the file's, bit for bit: ", "现在的表与文件里的逐位相同："));
"""
    ),
    md(
        en="""
That is fine, for three reasons of our own:

- **The load gives back exactly what was saved.** A model trained with PyTorch's table keeps
  PyTorch's table, to the last bit, even though the constructor here computes a slightly
  different one (step 8). The file, not the code that reads it, decides what the model
  computes.
- **The extra work is small and done once:** 800 values computed in the constructor, once per
  model, not once per forward pass.
- **The checkpoint is self-contained:** everything the forward pass reads is in the file, so a
  program that has the weights but not the formula (another framework, another language) can
  still run the model.

If you would rather have the constructor's table win, make the buffer non-persistent (step 7):
then nothing overwrites it, and the checkpoint is smaller.
""",
        zh="""
这没有问题，理由有三条（是我们自己的总结）：

- **加载还原的正是当初保存的东西**。用 PyTorch 的表训练出来的模型，加载后用的还是 PyTorch 的表，一位都不差，尽管这里的构造函数算出的表略有不同（第 8 步）。模型算什么，由文件决定，而不是由读取它的代码决定。
- **多做的那点工作很少，而且只做一次**：构造函数算 800 个值，每个模型只算一次，而不是每次前向传播都算。
- **检查点是自足的**：前向传播要读的东西全在文件里，所以一个只有权重、没有公式的程序（换一个框架，换一种语言）也能运行这个模型。

如果希望以构造函数算出的表为准，就把缓冲区设为非持久（第 7 步）：这样就没有什么会覆盖它，检查点也更小。
""",
    ),
    md(
        en="""
## 10. A buffer that starts as `None`

The article also shows the lazy form, `self.register_buffer("pe", None)`: the module knows the
name from the start and gets the tensor later, for instance once the first input says how long
the table must be. In the crate the field is an `Option<Buffer>`. While it holds `None`, the
diagnostics list it, but `named_buffers` and the state dict leave it out, as PyTorch does
(checked with PyTorch 2.15):
""",
        zh="""
## 10. 从 `None` 开始的缓冲区

文章还介绍了惰性的写法 `self.register_buffer("pe", None)`：模块一开始就知道这个名字，张量以后再给，比如等第一个输入到来、知道表需要多长的时候。在 crate 里，这个字段的类型是 `Option<Buffer>`。它为 `None` 时，诊断表会列出它，但 `named_buffers` 和状态字典都不包含它，这与 PyTorch 的行为一致（用 PyTorch 2.15 核实过）：
""",
    ),
    code(
        """
#[derive(Module)]
struct LazyPositionalEncoding {
    embedding: Embedding,
    pe: Option<Buffer>, // PyTorch: self.register_buffer("pe", None)
}

fn lists(m: &LazyPositionalEncoding) -> String {
    let buffers: Vec<String> = m.named_buffers().into_iter().map(|(name, _)| name).collect();
    let keys: Vec<String> = m.state_dict().keys().map(String::from).collect();
    format!("named_buffers() = {buffers:?}, state_dict() = {keys:?}")
}

let mut lazy = LazyPositionalEncoding { embedding: Embedding::new(1000, 16, 0)?, pe: None };
println!("{}{}", tr("while `pe` is None: ", "`pe` 为 None 时："), lists(&lazy));
lazy.diagnostics().show();
"""
    ),
    md(
        en="""
Once `set_buffer` gives it a tensor (PyTorch: `self.pe = table`), it is a buffer like any other:
""",
        zh="""
一旦用 `set_buffer` 给它一个张量（PyTorch 写作 `self.pe = table`），它就和别的缓冲区没有区别了：
""",
    ),
    code(
        """
lazy.set_buffer("pe", sinusoidal_table(50, 16)?)?;
println!("{}{}", tr("after set_buffer: ", "set_buffer 之后："), lists(&lazy));
"""
    ),
    md(
        en="""
## 11. Reproducibility

A buffer drawn at random, a fixed random projection say, must come back exactly as it was, or
the reloaded model is a different model. Saved with the module, it returns bit for bit:
""",
        zh="""
## 11. 可复现性

随机生成的缓冲区（比如一个固定的随机投影矩阵）必须原样恢复，否则重新加载的模型就成了另一个模型。随模块一起保存后，它可以逐位不差地恢复：
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
println!("{}{}", tr("identical bit for bit: ", "逐位相同："), bits(&random.projection)? == bits(&reloaded.projection)?);
"""
    ),
    md(
        en="""
## 12. Why not rebuild the tensor in every forward pass?

One could avoid the whole question by building the mask inside `forward`, or by keeping it on
the CPU and copying it over on every call. The cell below measures one forward pass of causal
attention (batch 2, 64 tokens, d = 32) each way on this machine's best device, the three ways
in turns so that a busy moment on the machine hits all of them alike, and says what the figures
show. Times vary from run to run.

On a CPU the copy goes nowhere: the CPU is already the device. On a GPU it is a host-to-device
transfer on every call; the project's [BENCHMARKS.md](../../BENCHMARKS.md) measured it on an
H100 at batch 8, 1024 tokens, d = 768: 2.22 ms per call against 1.76 ms with the buffer.
""",
        zh="""
## 12. 为什么不在每次前向传播时重新构建张量？

也可以绕开这个问题：在 `forward` 里现场构建掩码，或者把掩码放在 CPU 上、每次调用时再复制过去。下面的单元格在本机最合适的设备上，分别按这几种做法测量一次因果注意力前向传播（批大小 2、64 个词元、d = 32）的耗时。三种做法轮流测量，机器忙的那一刻会同样落在三者身上。单元格最后会说明这些数字说明了什么。每次运行的时间会有波动。

在 CPU 上，“复制”哪儿也不去：CPU 本身就是计算设备。在 GPU 上，每次调用都是一次从主机到设备的传输；本项目的 [BENCHMARKS.md](../../BENCHMARKS.md) 在 H100 上测过（批大小 8、1024 个词元、d = 768）：每次调用 2.22 ms，而用缓冲区是 1.76 ms。
""",
    ),
    code(
        """
let strategies = cost::MaskStrategy::ALL;
// 11 rounds, each timing the three ways once, side by side: a busy moment hits all three.
let times = cost::forward_times_ms(2, 64, 32, 11, &device)?;
let caption = match language {
    Language::English => format!("One forward pass on {}, median of 11 calls each", device_name(&device)),
    Language::Chinese => format!("一次前向传播的耗时（{}，各 11 次调用的中位数）", device_name(&device)),
};
let mut timing = Table::new(&caption, &[
    (tr("mask", "掩码"), Column::Text),
    (tr("ms", "毫秒"), Column::Number),
    (tr("relative to the buffer", "相对于缓冲区"), Column::Number),
]);
for (strategy, ms) in strategies.iter().zip(&times) {
    timing.row([strategy.label().to_string(), format!("{ms:.3}"), format!("{:.2}", ms / times[0])]);
}
timing.show();
""",
        tags=["nondeterministic"],
    ),
    code(
        """
let bars: Vec<(String, f64)> = strategies.iter().zip(&times).map(|(s, &ms)| (s.label().to_string(), ms)).collect();
plots::bar_chart(&bars, &caption, tr("milliseconds", "毫秒"))?.show();
""",
        tags=["nondeterministic"],
    ),
    code(
        """
let fastest = (0..3).min_by(|&a, &b| times[a].total_cmp(&times[b])).unwrap_or(0);
let slowest = (0..3).max_by(|&a, &b| times[a].total_cmp(&times[b])).unwrap_or(0);
// Rounded up, so that "within" never understates the spread.
let spread = ((times[slowest] / times[fastest] - 1.0) * 1000.0).ceil() / 10.0;
let (fast, slow): (&str, &str) = (strategies[fastest].label(), strategies[slowest].label());
let on = device_name(&device);
let mut conclusion = match (language, spread < 10.0) {
    (Language::English, true) => format!(
        "On {on} the three ways are within {spread:.1} % of each other: however the mask is provided, it costs no \\
         measurable time here. What the buffer buys on this device is correctness: it moves, casts and saves with the model."),
    (Language::Chinese, true) => format!(
        "在 {on} 上，三种做法彼此相差不到 {spread:.1}%：无论掩码怎样提供，这里都测不出时间上的差别。\\
         在这个设备上，缓冲区带来的好处是正确性：它会随模型移到别的设备上、转换类型、一起保存。"),
    (Language::English, false) => format!(
        "On {on}, “{slow}” takes {:.2} times as long as “{fast}”, the fastest.", times[slowest] / times[fastest]),
    (Language::Chinese, false) => format!(
        "在 {on} 上，“{slow}”的耗时是最快的“{fast}”的 {:.2} 倍。", times[slowest] / times[fastest]),
};
if device.is_cpu() {
    conclusion += "\\n";
    conclusion += tr("On a CPU “copied from the CPU every call” copies nothing: the mask is already on the device.",
                     "在 CPU 上，“每次调用时从 CPU 复制”其实什么也没有复制：掩码本来就在这个设备上。");
}
println!("{conclusion}");
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
缓冲区的代价则是内存：`T × T` 的掩码随上下文长度的平方增长。以 f32 存储每个元素占 4 字节，以 u8 存储占 1 字节；而从下标直接推导因果关系的融合注意力内核则完全不需要存储掩码。
""",
    ),
    code(
        """
let contexts = [1024usize, 4096, 16384, 32768];
fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
let kinds: [(&str, Option<DType>); 3] = [(tr("f32 mask", "f32 掩码"), Some(DType::F32)), (tr("u8 mask", "u8 掩码"), Some(DType::U8)),
             (tr("no mask stored", "不存掩码"), None)];
let mut columns: Vec<(&str, Column)> = vec![(tr("context length", "上下文长度"), Column::Number)];
columns.extend(kinds.iter().map(|(name, _)| (*name, Column::Number)));
let mut memory = Table::new(tr("Memory of one causal-mask buffer, in MiB", "一个因果掩码缓冲区占用的内存（MiB）"), &columns);
for &n in &contexts {
    let sizes = kinds.iter().map(|(_, dtype)| format!("{:.1}", mib(cost::mask_bytes(n, *dtype))));
    memory.row(std::iter::once(n.to_string()).chain(sizes));
}
memory.show();
"""
    ),
    code(
        """
let groups: Vec<String> = contexts.iter().map(|n| n.to_string()).collect();
let series: Vec<(String, Vec<f64>)> = kinds
    .iter()
    .map(|(name, dtype)| (name.to_string(), contexts.iter().map(|&n| mib(cost::mask_bytes(n, *dtype))).collect()))
    .collect();
plots::grouped_bar_chart(&groups, &series, tr("Memory of a causal-mask buffer", "因果掩码缓冲区占用的内存"),
                         tr("context length", "上下文长度"), "MiB")?.show();
"""
    ),
    md(
        en="""
## 13. Best practices

- **Register** every tensor the forward pass reads that belongs to the model but is not
  trained: masks, position tables, running statistics (`running_mean`), fixed random
  projections. Registering is what moves it with the model (step 4), casts it (step 6) and saves
  it (step 7); gradients are no reason either way (step 5).
- Make it **non-persistent** when it is pure maths of the configuration, like this table: the
  constructor rebuilds it and the checkpoint gets smaller (step 7). Keep it **persistent** when it
  carries state a checkpoint must restore: running statistics, a random draw (step 11), a table
  that must come back exactly as the model was trained with it (step 9).
- Use `Option<Buffer>` (PyTorch: `register_buffer(name, None)`) for a buffer whose tensor comes
  later (step 10).
- Keep a **plain field** only for what is not the model's: a value the caller owns, a cache you
  rebuild on purpose. Nothing moves, casts or saves it.
- **Name** a buffer for what it holds: `position_embeddings` or `pe`, `causal_mask` or `mask`,
  never `temp` or `buf`. The name is the key in every checkpoint. When files travel between Rust
  and PyTorch, the keys must be PyTorch's; `#[module(rename = "...")]` keeps a descriptive Rust
  name with PyTorch's key.
- When a forward pass fails with a device or dtype mismatch, look first for a tensor in a plain
  field: `diagnostics()` lists every tensor with its kind, device and dtype.

The naming rule, shown. Descriptive names alone make keys that PyTorch's file does not have, and
the strict load lists every key that does not match:
""",
        zh="""
## 13. 最佳实践

- 凡是前向传播要读、属于模型但不参与训练的张量，都要**注册**成缓冲区：掩码、位置编码表、滑动统计量（`running_mean`）、固定的随机投影。注册之后，它才会随模型移到设备上（第 4 步）、转换类型（第 6 步）、写进检查点（第 7 步）；至于梯度，注册与否都一样（第 5 步）。
- 如果它完全由配置经数学计算得出，比如这张位置编码表，就设为**非持久**：构造函数会重新算出它，检查点也更小（第 7 步）。如果它承载着检查点必须恢复的状态，就保持**持久**：滑动统计量、一次随机抽样的结果（第 11 步）、必须和训练时一模一样地还原的表（第 9 步）。
- 张量要以后才有的缓冲区，用 `Option<Buffer>`（PyTorch 写作 `register_buffer(name, None)`，第 10 步）。
- 只有不属于模型的东西才放在**普通字段**里：调用者自己持有的值、有意重建的缓存。普通字段不会被移到别的设备、转换类型或保存。
- 给缓冲区**命名**时，要说清它装的是什么：`position_embeddings` 或 `pe`，`causal_mask` 或 `mask`，而不是 `temp` 或 `buf`。这个名字就是它在每个检查点里的键。文件要在 Rust 和 PyTorch 之间往来时，键必须与 PyTorch 的一致；`#[module(rename = "...")]` 可以让 Rust 里的字段名保持描述性，而键用 PyTorch 的。
- 前向传播报设备或数据类型不匹配时，先找找是不是有张量放在普通字段里：`diagnostics()` 会列出每个张量的类别、设备和数据类型。

下面演示命名的规则。只用描述性的名字，得到的键是 PyTorch 的文件里没有的；严格加载会列出所有对不上的键：
""",
    ),
    code(
        """
#[derive(Module)]
struct DescriptiveNames {
    token_embeddings: Embedding,
    position_embeddings: Buffer,
}

let mut descriptive = DescriptiveNames {
    token_embeddings: Embedding::new(100, 8, 0)?,
    position_embeddings: Buffer::new(sinusoidal_table(6, 8)?),
};
println!("state_dict(): {:?}", descriptive.state_dict().keys().collect::<Vec<_>>());
match descriptive.load(reference_file("pytorch_pe_d8_len6.pth"), true) {
    Ok(keys) => println!("{keys}"),
    Err(err) => show_error(&err),
};
""",
        tags=["intended-error"],
        expect=["Missing key(s) in state_dict:", "Unexpected key(s) in state_dict:"],
    ),
    md(
        en="""
`rename` keeps the descriptive Rust names and gives the checkpoint PyTorch's keys, and the same
file loads:
""",
        zh="""
上面的错误信息沿用 PyTorch 的原话：`Missing key(s)` 是模型有、文件里却没有的键，`Unexpected key(s)` 是文件里有、模型却不认识的键。`rename` 让 Rust 里的字段名保持描述性，检查点里的键则用 PyTorch 的，于是同一个文件就能加载了：
""",
    ),
    code(
        """
#[derive(Module)]
struct PyTorchKeys {
    #[module(rename = "embedding")]
    token_embeddings: Embedding,
    #[module(rename = "pe")]
    position_embeddings: Buffer,
}

let mut renamed = PyTorchKeys {
    token_embeddings: Embedding::new(100, 8, 0)?,
    position_embeddings: Buffer::new(sinusoidal_table(6, 8)?),
};
println!("state_dict(): {:?}", renamed.state_dict().keys().collect::<Vec<_>>());
println!("{}", renamed.load(reference_file("pytorch_pe_d8_len6.pth"), true)?);
"""
    ),
]
