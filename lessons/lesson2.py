"""Lesson 2: buffers in practice, positional encodings. The source of
notebooks/{en,zh}/02-positional-encoding-buffers.ipynb and
examples/lesson2_positional_encoding_buffers{,_zh}.rs (scripts/notebooks.py builds them).

It follows Jian Wang's article 《pytorch register_buffer的一些思考》 (DEV Community) section
by section, in the article's order: each step shows with a cell what the article claims, and
where the claim is wrong or incomplete (gradients, the lazy `None` buffer), what happens
instead."""

from cells import answer, check, code, md

NAME = "02-positional-encoding-buffers"
EXAMPLE = "lesson2_positional_encoding_buffers"
TITLE = {"en": "Buffers in practice: positional encodings", "zh": "缓冲区实战：位置编码"}

CELLS = [
    md(
        en="""
# Buffers in practice: positional encodings

*中文版: [02-positional-encoding-buffers.ipynb](../zh/02-positional-encoding-buffers.ipynb)*

This lesson follows an article by Jian Wang, 《pytorch register_buffer的一些思考》 ("Some
thoughts on PyTorch's `register_buffer`", in Chinese, on DEV Community), section by section
and in its order. The article asks why a tensor that needs no gradient should be registered
with `register_buffer` instead of simply being assigned to an attribute, and answers with a
model that adds a positional-encoding table to its token embeddings. Each step below runs
what one section claims; where a claim does not hold, the cell shows what happens instead.

The article's model holds three things: a token embedding, the sinusoidal table registered as
the buffer `position_encoding`, and an `nn.Transformer`. The Transformer plays no part in the
question of buffers, so this lesson keeps only the embedding and the table, and names the
buffer `pe`, as PyTorch's reference files in `data/reference/` do (step 10 shows how a Rust
field keeps the longer name).

| the article's section | step |
|---|---|
| the two options: direct assignment or `register_buffer` | 1 |
| problems of direct assignment: 1. device mismatch | 2 |
| problems of direct assignment: 2. gradient confusion | 3 |
| advantages of `register_buffer`: 1. automatic device management | 4 |
| advantages of `register_buffer`: 2. clear model structure | 5 |
| a worked example: the positional-encoding model; how it is used | 6 |
| thoughts on recomputing, with its four reasons | 7 |
| lazy computation: `register_buffer(name, None)` | 8 |
| random-number consistency | 9 |
| best practices: when to use which, naming conventions | 10 |
| summary | summary |
""",
        zh="""
# 缓冲区实战：位置编码

*English version: [02-positional-encoding-buffers.ipynb](../en/02-positional-encoding-buffers.ipynb)*

这一课跟着 Jian Wang 发表在 DEV Community 上的文章《pytorch register_buffer的一些思考》走，按文章原来的顺序，一节一节地看。文章讨论的问题是：一个不需要梯度的张量，为什么要用 `register_buffer` 注册，而不是直接赋值给一个属性？它举的例子是一个模型：把位置编码表加到词元嵌入上。下面每一步都把文章某一节的说法实际运行一遍；说法站不住的地方，单元格会展示实际发生了什么。

文章的模型有三个部分：词元嵌入、注册为缓冲区 `position_encoding` 的正弦位置编码表，以及一个 `nn.Transformer`。Transformer 与缓冲区的问题无关，所以本课只保留嵌入和位置编码表，并且把缓冲区叫作 `pe`，与 `data/reference/` 里 PyTorch 生成的参考文件一致（第 10 步会说明 Rust 字段怎样保留更长的名字）。

| 文章的小节 | 步骤 |
|---|---|
| 两种方案：直接赋值与 `register_buffer` | 1 |
| 直接赋值的潜在问题：1. 设备不匹配问题 | 2 |
| 直接赋值的潜在问题：2. 梯度计算混乱 | 3 |
| register_buffer 的优势：1. 自动设备管理 | 4 |
| register_buffer 的优势：2. 明确的模型结构 | 5 |
| 实际案例：位置编码模型；使用场景 | 6 |
| 关于重新计算的思考（四条理由） | 7 |
| 延迟计算：`register_buffer(name, None)` | 8 |
| 随机数一致性 | 9 |
| 最佳实践：何时用哪一种、命名规范 | 10 |
| 总结 | 总结 |
""",
    ),
    code(':dep understanding-buffers = { path = "../.." }'),
    code(
        """
use understanding_buffers::prelude::*;
lesson_setup(); // «the notebook's language, readable panics, candle errors without backtraces‖笔记本的语言、易读的 panic 信息、不带回溯的 candle 错误»
"""
    ),
    md(
        en="""
The Rust here is lesson 1's: `?` hands an error on to the cell, `Result` is a value or an
error, `&` lends a value without giving it away.

## 1. Two options: direct assignment or `register_buffer`

The article starts from the two ways to keep the table in a module:
`self.position_encoding = position_encoding` (direct assignment) and
`self.register_buffer("position_encoding", position_encoding)`. In the crate the type of a
struct field makes that choice: a `Tensor` field is direct assignment, a `Buffer` field is a
registered buffer.

The table is the article's: `PE[pos, 2i] = sin(pos / 10000^(2i/d))` and
`PE[pos, 2i+1] = cos(pos / 10000^(2i/d))`. `sinusoidal_table(max_seq_len, d_model)` computes
it (each angle in f64, rounded once to f32). The forward pass adds the table's first `seq_len`
rows to the token embeddings. First the model with direct assignment:
""",
        zh="""
这里用到的 Rust 语法与第 1 课相同：`?` 把错误交给单元格处理，`Result` 要么是一个值、要么是一个错误，`&` 是把值借出去，而不是交出去。

## 1. 两种方案：直接赋值还是 `register_buffer`

文章从两种保存位置编码表的写法讲起：`self.position_encoding = position_encoding`（直接赋值）和 `self.register_buffer("position_encoding", position_encoding)`。在 crate 里，由结构体字段的类型来做这个选择：`Tensor` 类型的字段相当于直接赋值，`Buffer` 类型的字段就是注册过的缓冲区。

位置编码表与文章里的相同：`PE[pos, 2i] = sin(pos / 10000^(2i/d))`，`PE[pos, 2i+1] = cos(pos / 10000^(2i/d))`，由 `sinusoidal_table(max_seq_len, d_model)` 计算（每个角度先用 f64 计算，最后只舍入一次，得到 f32）。前向传播把表的前 `seq_len` 行加到词元嵌入上。先写直接赋值的模型：
""",
    ),
    code(
        """
#[derive(Module)]
struct DirectAssignmentModel {
    embedding: Embedding,
    pe: Tensor, // «option 1, direct assignment: self.pe = pe‖方案1，直接赋值：self.pe = pe»
}

impl DirectAssignmentModel {
    fn new(vocab_size: usize, d_model: usize, max_seq_len: usize) -> Result<Self> {
        Ok(Self {
            embedding: Embedding::new(vocab_size, d_model, 0)?, // «weights drawn from seed 0‖权重由种子 0 生成»
            pe: sinusoidal_table(max_seq_len, d_model)?,
        })
    }

    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let seq_len = ids.dim(1)?;
        Ok(self.embedding.forward(ids)?.broadcast_add(&self.pe.narrow(0, 0, seq_len)?)?)
    }
}
"""
    ),
    md(
        en="""
Then the article's `PositionalEncodingModel`, with the table registered as a buffer. Only the
field's type changes, and `.into()` turns the table into a `Buffer`:
""",
        zh="""
再写文章里的 `PositionalEncodingModel`，把位置编码表注册为缓冲区。只有字段的类型变了，`.into()` 把表转换成 `Buffer`：
""",
    ),
    code(
        """
#[derive(Module)]
struct PositionalEncodingModel {
    embedding: Embedding,
    // «old: pe: Tensor,‖旧：pe: Tensor,»
    pe: Buffer, // «new, option 2: self.register_buffer("pe", pe)‖新，方案2：self.register_buffer("pe", pe)»
}

impl PositionalEncodingModel {
    fn new(vocab_size: usize, d_model: usize, max_seq_len: usize) -> Result<Self> {
        Ok(Self {
            embedding: Embedding::new(vocab_size, d_model, 0)?,
            pe: sinusoidal_table(max_seq_len, d_model)?.into(),
        })
    }

    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let seq_len = ids.dim(1)?;
        Ok(self.embedding.forward(ids)?.broadcast_add(&self.pe.narrow(0, 0, seq_len)?)?)
    }
}
"""
    ),
    md(
        en="""
Both at the article's size (`d_model = 8`, `max_seq_len = 6`), with 100 tokens, on one
sequence of three token ids. On the CPU where they are built, the two options give the same
numbers:
""",
        zh="""
两个模型都用文章的尺寸（`d_model = 8`，`max_seq_len = 6`），词表 100 个词元，输入是一条含 3 个词元 id 的序列。两个模型都建在 CPU 上，这时两种方案算出的数字完全相同：
""",
    ),
    code(
        """
let ids = Tensor::new(&[[5u32, 17, 42]], &Device::Cpu)?;
let mut direct = DirectAssignmentModel::new(100, 8, 6)?;
let mut model = PositionalEncodingModel::new(100, 8, 6)?;
let out = model.forward(&ids)?;
println!("{}", TensorRepr(&out));
println!("«the same as direct assignment: ‖与直接赋值的结果相同：»{}", out.to_vec3::<f32>()? == direct.forward(&ids)?.to_vec3::<f32>()?);
"""
    ),
    md(
        en="""
## 2. Direct assignment, problem 1: device mismatch

The article's first problem: `model.cuda()` moves the parameters to the GPU, the directly
assigned tensor stays on the CPU, and the forward pass fails. The crate's `to_device(&device)`
is PyTorch's `model.to(device)`; `best_device()` picks a GPU when there is one (CUDA, or Metal
on a Mac), else the CPU.

**What you see depends on the machine.** On a GPU the cell prints `direct.pe: cpu` and
`model.pe: cuda:0`, and the direct-assignment model's forward pass fails with candle's
`device mismatch in add` (the embedding is on the GPU, the table on the CPU); PyTorch raises a
`RuntimeError` that begins `Expected all tensors to be on the same device`. On a CPU-only
machine the best device is the CPU itself: both tables print `cpu`, nothing moves and nothing
fails. Step 4 shows a failure of the same kind that happens on every machine.
""",
        zh="""
## 2. 直接赋值的潜在问题之一：设备不匹配问题

文章指出的第一个问题：`model.cuda()` 把参数移到 GPU 上，直接赋值的张量却留在 CPU 上，前向传播随之出错。crate 的 `to_device(&device)` 对应 PyTorch 的 `model.to(device)`；`best_device()` 在有 GPU 时选 GPU（CUDA，或 Mac 上的 Metal），否则选 CPU。

**看到什么取决于机器。** 在 GPU 上，单元格打印 `direct.pe: cpu` 和 `model.pe: cuda:0`，直接赋值模型的前向传播报出 candle 的 `device mismatch in add`（嵌入在 GPU 上，位置编码表在 CPU 上）；PyTorch 则抛出以 `Expected all tensors to be on the same device` 开头的 `RuntimeError`。在只有 CPU 的机器上，最合适的设备就是 CPU 本身：两张表都打印 `cpu`，什么都没有移动，也不会出错。第 4 步展示的同类问题则在任何机器上都会出现。
""",
    ),
    code(
        """
let device = best_device();
direct.to_device(&device)?; // «PyTorch: model.to(device), or model.cuda()‖PyTorch：model.to(device) 或 model.cuda()»
model.to_device(&device)?;
if let Err(err) = direct.forward(&ids.to_device(&device)?) {
    show_error(&err);
}
println!("direct.pe: {}", device_name(direct.pe.device()));
println!("model.pe:  {}", device_name(model.pe.device()));
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
## 3. Direct assignment, problem 2: gradient confusion

The article's second problem: PyTorch "may mistake" a directly assigned tensor for a parameter
that needs gradients, and waste work on it in the backward pass. That does not happen. In
PyTorch a parameter is what `nn.Parameter` makes; a tensor assigned to an attribute stays an
ordinary tensor with `requires_grad=False`, and autograd computes nothing for it, exactly as
for a buffer. Checked with PyTorch 2.15: after `backward()`, the plain attribute and the
registered buffer both have `.grad` `None` and `requires_grad` `False`; only
`embedding.weight` has a gradient.

What makes a buffer "not trained" is something else: it is not among `parameters()`, the
list an optimizer is handed. `register_buffer` does not even switch gradients off: register a
tensor that has `requires_grad=True`, and the buffer keeps it.

In candle a `Buffer` or a `Tensor` field holds an ordinary tensor, never a trainable variable,
so neither gets a gradient. The cell keeps the same table both ways in one small module and
runs a backward pass.
""",
        zh="""
## 3. 直接赋值的潜在问题之二：梯度计算混乱

文章指出的第二个问题：PyTorch 可能把直接赋值的张量误当成需要梯度的参数，在反向传播时白白为它计算梯度。实际上不会这样。在 PyTorch 里，参数是 `nn.Parameter` 创建出来的；赋值给属性的张量仍是普通张量，`requires_grad=False`，自动求导不会为它计算任何东西，这一点和缓冲区完全一样。用 PyTorch 2.15 验证过：`backward()` 之后，普通属性和注册过的缓冲区的 `.grad` 都是 `None`，`requires_grad` 都是 `False`，只有 `embedding.weight` 有梯度。

缓冲区之所以“不参与训练”，原因在别处：它不在 `parameters()` 里，而优化器拿到的正是这份列表。`register_buffer` 甚至不会关掉梯度：注册一个 `requires_grad=True` 的张量，缓冲区会原样保留这个设置。

在 candle 里，`Buffer` 字段和 `Tensor` 字段装的都是普通张量，从来不是可训练的变量，所以两者都得不到梯度。下面的单元格把同一张表用两种方式放进一个小模块，再做一次反向传播。
""",
    ),
    code(
        """
#[derive(Module)]
struct BothWays {
    embedding: Embedding,
    table_as_buffer: Buffer,
    table_as_plain_field: Tensor,
}

let both = BothWays {
    embedding: Embedding::new(100, 8, 0)?,
    table_as_buffer: sinusoidal_table(3, 8)?.into(),
    table_as_plain_field: sinusoidal_table(3, 8)?,
};
let tokens = Tensor::new(&[[5u32, 17, 42]], &Device::Cpu)?;
let out = both.embedding.forward(&tokens)?.broadcast_add(&both.table_as_buffer)?.broadcast_add(&both.table_as_plain_field)?;
both.gradients(&out.sum_all()?)?.show();
"""
    ),
    md(
        en="""
Only `embedding.weight` gets a gradient. Gradients are no reason to choose a buffer; what a
directly assigned tensor misses is the move (step 2), the cast (step 4) and the state dict
(step 5).

## 4. `register_buffer`, advantage 1: automatic device management

The article: `model.cuda()` takes the buffer to the GPU, and `model.cpu()` brings it back.
The same holds for dtypes: `model.half()` or `model.to(torch.bfloat16)` casts the
floating-point buffers too. Both models go back to the CPU and are cast to bf16; the
diagnostics list every tensor of the direct-assignment model and mark in words the one that
missed the cast:
""",
        zh="""
只有 `embedding.weight` 得到了梯度。所以梯度不是选择缓冲区的理由；直接赋值的张量真正缺的是：随模型移动（第 2 步）、随模型转换类型（第 4 步）、写进状态字典（第 5 步）。

## 4. register_buffer 的优势之一：自动设备管理

文章说：`model.cuda()` 会把缓冲区带到 GPU 上，`model.cpu()` 再把它带回来。数据类型也是这样：`model.half()` 或 `model.to(torch.bfloat16)` 会把浮点缓冲区一起转换。下面把两个模型都移回 CPU，再转换成 bf16；诊断表列出直接赋值模型的每一个张量，并用文字标出没有跟着转换的那一个：
""",
    ),
    code(
        """
model.to_device(&Device::Cpu)?; // «PyTorch: model.cpu()‖PyTorch：model.cpu()»
direct.to_device(&Device::Cpu)?;
model.to_dtype(DType::BF16)?; // «PyTorch: model.to(torch.bfloat16)‖PyTorch：model.to(torch.bfloat16)»
direct.to_dtype(DType::BF16)?;
println!("model.pe: {}, {:?}", device_name(model.pe.device()), model.pe.dtype());
direct.diagnostics().show();
"""
    ),
    md(
        en="""
The buffer followed the model to bf16; the directly assigned table is still f32. Now the
forward pass of each:
""",
        zh="""
缓冲区跟着模型变成了 bf16，直接赋值的表仍是 f32。再分别做一次前向传播：
""",
    ),
    code(
        """
if let Err(err) = direct.forward(&ids) {
    show_error(&err);
}
println!("model: {:?}", model.forward(&ids)?.dtype());
""",
        tags=["intended-error"],
        expect=["dtype mismatch in add, lhs: BF16, rhs: F32"],
    ),
    md(
        en="""
Here candle and PyTorch part ways. candle refuses to add tensors of two dtypes:
`dtype mismatch in add, lhs: BF16, rhs: F32` (bf16 embeddings plus the f32 table). PyTorch
raises nothing: it promotes `bf16 + f32` to float32, so the model silently computes in a dtype
you did not choose, with a float32 result. Either way the directly assigned table missed the
cast; in PyTorch you find out later, if at all.

## 5. `register_buffer`, advantage 2: clear model structure

The article: `named_buffers()` and `buffers()` list the buffers, `parameters()` the
parameters, so the two kinds stay apart. The state dict, which the article's summary calls
state persistence, holds both, and only registered tensors:
""",
        zh="""
在这里 candle 和 PyTorch 的做法不同。candle 拒绝把两种数据类型的张量相加：`dtype mismatch in add, lhs: BF16, rhs: F32`（bf16 的嵌入加上 f32 的位置编码表）。PyTorch 不会报错：它把 `bf16 + f32` 自动提升为 float32，模型于是悄悄地用一种你没有选择的数据类型计算，结果是 float32。无论哪种情况，直接赋值的表都没有跟着转换；只是在 PyTorch 里，你要到后来才会发现，甚至根本发现不了。

## 5. register_buffer 的优势之二：明确的模型结构

文章说：`named_buffers()` 和 `buffers()` 列出缓冲区，`parameters()` 列出参数，两类张量泾渭分明。状态字典（文章总结里说的“状态持久化”）则两者都包含，而且只包含注册过的张量：
""",
    ),
    code(
        """
println!("model.named_parameters():  {:?}", names(&model.named_parameters()));
println!("model.named_buffers():     {:?}", names(&model.named_buffers()));
println!("direct.named_buffers():    {:?}", names(&direct.named_buffers()));
println!("model.state_dict().keys():  {:?}", model.state_dict().keys().collect::<Vec<_>>());
println!("direct.state_dict().keys(): {:?}", direct.state_dict().keys().collect::<Vec<_>>());
"""
    ),
    md(
        en="""
A checkpoint of the direct-assignment model has no table in it: whoever loads it must rebuild
the table exactly as it was.

## 6. The worked example, and how it is used

This is the article's model. To check its numbers against PyTorch's,
`bench/make_positional.py` built it in PyTorch 2.15 at the article's size (`d_model = 8`,
`max_seq_len = 6`, 100 tokens, `torch.manual_seed(0)`), with the table computed in float32 as
the article computes it, and saved `torch.save(model.state_dict(), path)` as
`data/reference/pytorch_pe_d8_len6.pth`. Its keys, `pe` and `embedding.weight`, are this
model's, so the file loads as it is. Then the article's usage: model and input on the device,
and the forward pass finds the table already there.
""",
        zh="""
直接赋值模型的状态字典里没有位置编码表，所以它的检查点里也没有：加载检查点的人必须自己原样重建这张表。

## 6. 实际案例：位置编码模型，以及使用场景

这就是文章里的模型。为了和 PyTorch 的数值对照，`bench/make_positional.py` 用 PyTorch 2.15 按文章的尺寸（`d_model = 8`，`max_seq_len = 6`，100 个词元，`torch.manual_seed(0)`）构建了它，位置编码表按文章的写法用 float32 计算，再用 `torch.save(model.state_dict(), path)` 保存为 `data/reference/pytorch_pe_d8_len6.pth`。文件里的键 `pe` 和 `embedding.weight` 与这个模型的一致，所以可以原样加载。接着是文章的使用场景：模型和输入都放到设备上，前向传播时位置编码表已经在那里了。
""",
    ),
    code(
        """
let mut article = PositionalEncodingModel::new(100, 8, 6)?;
article.load(reference_file("pytorch_pe_d8_len6.pth"), LoadMode::Strict)?; // «model.load_state_dict(torch.load(path))‖model.load_state_dict(torch.load(path))»
article.to_device(&device)?; // «model = model.cuda()‖model = model.cuda()»
let output = article.forward(&ids.to_device(&device)?)?; // «output = model(input_ids)‖output = model(input_ids)»
println!("{}", TensorRepr(&output));
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
These are the numbers PyTorch's model computes for these ids: the same weights and the same
table, added once in f32.

## 7. Thoughts on recomputing

The article asks: if `register_buffer` saves the table, why compute it in `__init__` too,
only for `load_state_dict` to replace it? Its answer is four reasons why that is fine. Each
one, commented:

1. **Low cost** ("these matrices are quick to compute"). True: the table is computed once
   per model, 48 values here, and never per forward pass. Even building a tensor anew in every
   forward pass is cheap, as long as it is built on the device; what does cost on a GPU is
   copying it from the CPU on every call. Measured below on this machine, and on an H100 in
   the project's benchmarks.
2. **Simpler code** ("no complicated lazy-loading logic"). True, and step 8 shows that the
   lazy alternative the article offers next has a trap.
3. **Numerical consistency** ("the saved values are exactly the ones used in training, free
   of floating-point differences"). True, and visible here: candle computes the table with
   f64 angles, PyTorch with float32 ones, and the two tables differ in their last digits. After
   the load, the model holds PyTorch's table bit for bit (next cell).
4. **Device management** ("the buffer is on the model's device"). True, but it is no reason
   to compute or to save the table: every buffer, saved or not, moves with the module (step 4).
   It answers "why a buffer", not "why compute it twice".

Reason 3, shown: row 5 of the table, as the constructor computes it, and after loading
PyTorch's file (PyTorch's row 5 starts `-0.95892429, 0.28366220, 0.47942552, 0.87758255`):
""",
        zh="""
这就是 PyTorch 的模型对这几个 id 算出的数字：同样的权重、同样的表，用 f32 做一次加法。

## 7. 关于重新计算的思考

文章问：既然 `register_buffer` 会把表保存下来，为什么还要在 `__init__` 里再算一遍，然后又被 `load_state_dict` 换掉？它给出了四条理由，说明这样做没有问题。下面逐条点评：

1. **计算成本较低**（“这些矩阵计算很快”）。没错：每个模型只算一次表，这里只有 48 个值，前向传播时从不重算。即使每次前向传播都重新构建一个张量，只要是在设备上构建，代价也很小；在 GPU 上真正花时间的，是每次调用都从 CPU 复制过去。下面在本机上实测，H100 上的数字则来自本项目的基准测试。
2. **代码简洁性**（“避免复杂的延迟加载逻辑”）。没错，而且第 8 步会说明，文章接下来给出的延迟计算写法有一个陷阱。
3. **数值一致性**（“保存的是训练时的精确值，避免浮点数精度差异”）。没错，在这里就能看到：candle 用 f64 计算角度，PyTorch 用 float32，两张表在最后几位上不同。加载之后，模型里就是 PyTorch 的表，一位不差（见下一个单元格）。
4. **设备管理**（“确保缓冲区与模型在同一设备上”）。这一点本身没错，但它不是计算或保存这张表的理由：任何缓冲区，保存与否，都会随模块移动（第 4 步）。它回答的是“为什么用缓冲区”，而不是“为什么要算两遍”。

先看第 3 条：表的第 5 行，一次是构造函数算出的，一次是加载 PyTorch 的文件之后的（PyTorch 的第 5 行以 `-0.95892429, 0.28366220, 0.47942552, 0.87758255` 开头）：
""",
    ),
    code(
        """
let mut fresh = PositionalEncodingModel::new(100, 8, 6)?; // «the constructor computes the table‖构造函数计算这张表»
let computed = fresh.pe.get(5)?;
fresh.load(reference_file("pytorch_pe_d8_len6.pth"), LoadMode::Strict)?; // «the load puts PyTorch's table in its place‖加载后换成 PyTorch 的表»
println!("candle:  {:.8?}", computed.to_vec1::<f32>()?);
println!("PyTorch: {:.8?}", fresh.pe.get(5)?.to_vec1::<f32>()?);
"""
    ),
    md(
        en="""
The rows differ only in the last digit of one value. Across the whole table 11 of the 48
values differ, by at most 6.0e-8; in a table of 50 positions and 16 dimensions the largest
difference is 5.1e-7 (`tests/positional.rs` keeps both under a bound). Small, but not zero: a model trained with PyTorch's table
gets exactly that table back only from the checkpoint.

Reason 1, measured. Lesson 1's causal mask stands in for the table: one forward pass of causal
attention with the mask kept as a buffer on the device, built anew on the device in every
call, or kept on the CPU and copied over in every call. Each way is timed once per round, the
three in turns, over 11 rounds. A way counts as slower or faster than the buffer only when the
ranges of their rounds do not overlap, that is, every round of the one beat every round of the
other; any smaller difference is reported as no measurable difference, so noise on a busy
machine cannot produce a verdict.

For comparison, the project's `BENCHMARKS.md` (in the repository's root) measured a larger case on an
H100 (batch 8, 1024 tokens, d = 768). PyTorch: 1.433 ms with the buffer, 1.497 ms with the
mask rebuilt on the GPU in every call (+4 %), 1.841 ms with the mask copied from the CPU in
every call (+28 %). candle: 1.755 ms with the buffer, 2.217 ms copied from the CPU (+26 %).
""",
        zh="""
两行只在一个值的最后一位上不同。整张表 48 个值里有 11 个不同，最大差值是 6.0e-8；换成 50 个位置、16 维的表，最大差值是 5.1e-7（`tests/positional.rs` 检查两者都不超过一个上限）。差别很小，但不是零：用 PyTorch 的表训练出来的模型，只有从检查点里才能拿回一模一样的表。

再实测第 1 条。这里用第 1 课的因果掩码代替位置编码表：因果注意力做一次前向传播，掩码有三种提供方式——作为缓冲区放在设备上；每次调用时在设备上重新构建；放在 CPU 上，每次调用时复制过去。每一轮把三种方式轮流各测一次，共测 11 轮。只有当两种方式各轮耗时的范围完全不重叠，也就是一方的每一轮都比另一方的每一轮快时，才判定它比缓冲区慢或快；差别再小一些，就报告为“测不出差别”。这样，机器繁忙带来的波动不会凭空造出一个结论。

作为对照，本项目仓库根目录下的 `BENCHMARKS.md` 在 H100 上测过更大的规模（批大小 8、1024 个词元、d = 768）。PyTorch：用缓冲区 1.433 ms，每次调用时在 GPU 上重建掩码 1.497 ms（+4%），每次调用时从 CPU 复制 1.841 ms（+28%）。candle：用缓冲区 1.755 ms，从 CPU 复制 2.217 ms（+26%）。
""",
    ),
    code(
        """
let timings = compare_mask_strategies(2, 64, 32, 11, &device)?; // «batch 2, 64 tokens, d = 32, 11 rounds‖批大小 2、64 个词元、d = 32，共 11 轮»
timings.show();
""",
        tags=["nondeterministic"],
    ),
    md(
        en="""
So computing is cheap, and the buffer's advantage on a GPU is that nothing has to travel on
each call. If you would rather not compute the table twice at all, the article's code does not
show the simplest way: a non-persistent buffer (`register_buffer("pe", pe, persistent=False)`,
in the crate `#[module(persistent = false)]`). It is computed in the constructor, moves and
casts with the module, and stays out of the state dict, so no load replaces it. You give up
reason 3: a checkpoint no longer carries the exact table. It is also the right home for a
cache, a tensor the module keeps between calls but never saves; a plain field would miss the
moves and casts of steps 2 and 4. (Hugging Face's Llama keeps its rotary `inv_freq` this way.)
""",
        zh="""
可见计算本身很便宜；在 GPU 上，缓冲区的好处在于每次调用时不需要搬运任何东西。如果干脆不想把表算两遍，文章的代码里没有给出最简单的做法：非持久缓冲区（`register_buffer("pe", pe, persistent=False)`，在 crate 里写作 `#[module(persistent = false)]`）。它在构造函数里算好，随模块移动、转换类型，但不进状态字典，所以加载时也就没有东西去替换它。代价是放弃第 3 条：检查点里不再有这张表的精确值。缓存也应该放在这里：模块在多次调用之间保留、却从不保存的张量，如果放在普通字段里，就会错过第 2 步和第 4 步里的移动和类型转换。（Hugging Face 的 Llama 就是这样保存旋转位置编码的 `inv_freq` 的。）
""",
    ),
    code(
        """
#[derive(Module)]
struct NonPersistentModel {
    embedding: Embedding,
    #[module(persistent = false)]
    pe: Buffer, // «PyTorch: self.register_buffer("pe", pe, persistent=False)‖PyTorch：self.register_buffer("pe", pe, persistent=False)»
}

let non_persistent = NonPersistentModel { embedding: Embedding::new(100, 8, 0)?, pe: sinusoidal_table(6, 8)?.into() };
println!("named_buffers():     {:?}", names(&non_persistent.named_buffers()));
println!("state_dict().keys(): {:?}", non_persistent.state_dict().keys().collect::<Vec<_>>());
"""
    ),
    md(
        en="""
## 8. Lazy computation: a buffer that starts as `None`

The article's optimisation: with `compute_encoding=False` the constructor skips the table and
registers `self.register_buffer("position_encoding", None)`, to be filled later, presumably by
the checkpoint. In the crate such a buffer is an `Option<Buffer>` field.

A `None` buffer is in neither `named_buffers()` nor `state_dict()`, in PyTorch as here. So a
load does not fill it: the checkpoint's `pe` is a key the module does not have. Checked with
PyTorch 2.15: a strict load raises
`Error(s) in loading state_dict for Lazy: Unexpected key(s) in state_dict: "pe".`, and a
non-strict one returns `_IncompatibleKeys(missing_keys=[], unexpected_keys=['pe'])` and leaves
`pe` at `None`. The crate does the same. Strict first:
""",
        zh="""
## 8. 延迟计算：从 `None` 开始的缓冲区

文章给出的优化：`compute_encoding=False` 时，构造函数不算表，只注册 `self.register_buffer("position_encoding", None)`，留待以后再填，言下之意是等检查点来填。在 crate 里，这样的缓冲区就是一个 `Option<Buffer>` 字段。

值为 `None` 的缓冲区既不在 `named_buffers()` 里，也不在 `state_dict()` 里，PyTorch 和这里都一样。所以加载不会填上它：检查点里的 `pe` 是模块没有的键。用 PyTorch 2.15 验证过：严格加载会报错 `Error(s) in loading state_dict for Lazy: Unexpected key(s) in state_dict: "pe".`；非严格加载返回 `_IncompatibleKeys(missing_keys=[], unexpected_keys=['pe'])`，而 `pe` 仍是 `None`。crate 的行为相同。先看严格加载：
""",
    ),
    code(
        """
#[derive(Module)]
struct LazyModel {
    embedding: Embedding,
    pe: Option<Buffer>, // «PyTorch: self.register_buffer("pe", None)‖PyTorch：self.register_buffer("pe", None)»
}

let mut lazy = LazyModel { embedding: Embedding::new(100, 8, 0)?, pe: None };
if let Err(err) = lazy.load(reference_file("pytorch_pe_d8_len6.pth"), LoadMode::Strict) {
    show_error(&err);
}
println!("lazy.pe.is_none(): {}", lazy.pe.is_none());
""",
        tags=["intended-error"],
        expect=['Unexpected key(s) in state_dict: "pe".'],
    ),
    md(
        en="""
Then non-strict, and what it takes for a load to fill `pe`: give the buffer a tensor first
(`set_buffer`; PyTorch: `self.pe = table`), which means computing the table after all.
""",
        zh="""
再看非严格加载，以及怎样才能让加载填上 `pe`：先给缓冲区一个张量（`set_buffer`，PyTorch 写作 `self.pe = table`），也就是说，表终究还是要先算出来。
""",
    ),
    code(
        """
println!("{}", lazy.load(reference_file("pytorch_pe_d8_len6.pth"), LoadMode::NonStrict)?);
println!("lazy.pe.is_none(): {}", lazy.pe.is_none());
lazy.set_buffer("pe", sinusoidal_table(6, 8)?)?; // «PyTorch: lazy.pe = table‖PyTorch：lazy.pe = table»
println!("{}", lazy.load(reference_file("pytorch_pe_d8_len6.pth"), LoadMode::Strict)?);
"""
    ),
    md(
        en="""
The lazy buffer saves nothing: the table has to be computed before the checkpoint can fill
it, which is the constructor's work again, plus the extra code of reason 2. If the table is
cheap (reason 1), compute it in the constructor; if you do not want it saved, make it
non-persistent (step 7).

## 9. Random-number consistency

The article: a buffer drawn at random is "exactly the same every time the model is loaded",
which makes the model reproducible. True, and the reason matters: the numbers come back because
the checkpoint holds them, not because the constructor draws them again. Each new model draws
new ones (candle cannot even seed its CPU generator; PyTorch draws the same only after the same
`torch.manual_seed`). The negative control: the same kind of draw kept in a plain field is not
in the checkpoint, so the reloaded model keeps its own new draw.
""",
        zh="""
延迟计算的缓冲区什么也没有省下：检查点要填它，得先把表算出来，这又回到了构造函数的工作，还多了第 2 条所说的额外代码。表算起来便宜（第 1 条），就在构造函数里算；不想保存它，就设为非持久（第 7 步）。

## 9. 随机数一致性

文章说：随机初始化的缓冲区“每次加载模型时，随机数是完全一致的”，从而保证模型行为可以复现。这没错，但原因要说清楚：随机数能恢复，是因为检查点里存着它们，而不是因为构造函数又抽到了同样的数。每个新模型都会抽出新的随机数（candle 甚至无法给 CPU 上的随机数生成器设种子；PyTorch 也只有在同样的 `torch.manual_seed` 之后才会抽到同样的数）。阴性对照：同样随机生成、但放在普通字段里的张量不在检查点里，所以重新加载的模型保留的是它自己新抽到的数。
""",
    ),
    code(
        """
#[derive(Module)]
struct RandomProjection {
    kept: Buffer,     // «saved with the model‖随模型一起保存»
    not_kept: Tensor, // «negative control: a plain field‖阴性对照：普通字段»
}

impl RandomProjection {
    fn draw() -> Result<Self> {
        let cpu = &Device::Cpu;
        Ok(Self { kept: Tensor::randn(0f32, 1.0, 4, cpu)?.into(), not_kept: Tensor::randn(0f32, 1.0, 4, cpu)? })
    }
}
"""
    ),
    code(
        """
let original = RandomProjection::draw()?;
let path = scratch_dir()?.join("random_projection.safetensors");
original.save(&path)?;
let mut reloaded = RandomProjection::draw()?; // «a new model draws new numbers‖新模型抽出新的随机数»
reloaded.load(&path, LoadMode::Strict)?;
println!("original.kept == reloaded.kept: {}", original.kept.to_vec1::<f32>()? == reloaded.kept.to_vec1::<f32>()?);
println!("original.not_kept == reloaded.not_kept: {}", original.not_kept.to_vec1::<f32>()? == reloaded.not_kept.to_vec1::<f32>()?);
"""
    ),
    md(
        en="""
## 10. Best practices: when to use which, and naming

The article's lists, with what the steps above showed:

| the article says | in practice |
|---|---|
| register a tensor that needs no gradient | register every tensor the forward pass reads and that belongs to the model: masks, tables, running statistics. Gradients decide nothing (step 3): a plain tensor gets none either |
| register a tensor that must be saved and loaded with the model | a persistent buffer (the default); it is in the state dict (step 5) |
| register a tensor that needs automatic device management | every buffer, persistent or not, moves and casts with the module (steps 2 and 4) |
| assign directly: temporary results, intermediate values that need no saving | a value that lives only during one forward pass is a local variable, not a field. A tensor kept between calls (a cache) is a non-persistent buffer (step 7), never a plain field, or it misses moves and casts |
| assign directly: plain Python objects (not tensors) | in Rust, fields of other types (sizes, flags, strings) are configuration: `#[derive(Module)]` accepts them and leaves them alone |
| (its lazy option, step 8) a buffer that starts as `None` | a load never fills it; compute the table, or make the buffer non-persistent |

**Naming.** The article recommends descriptive names (`position_embeddings`, `attention_mask`)
over names like `temp`. Worth adding: the name is the key in every checkpoint, so renaming a
buffer breaks every file saved before, and files shared with PyTorch must use PyTorch's keys.
In the crate, `#[module(rename = "...")]` gives a field a descriptive Rust name and keeps the
checkpoint's key. Without the rename, a field called `position_encoding` (the article's name)
makes the key `position_encoding`, and a strict load of PyTorch's file fails with
`Missing key(s) in state_dict: "position_encoding".` and `Unexpected key(s) in state_dict: "pe".`
With it, the file loads:
""",
        zh="""
## 10. 最佳实践：何时用哪一种，以及命名规范

文章给出的清单，对照前面各步的结果：

| 文章的说法 | 实际上 |
|---|---|
| 不需要梯度的张量用 `register_buffer` | 前向传播要读、属于模型的张量都要注册：掩码、位置编码表、滑动统计量。梯度说明不了什么（第 3 步）：普通张量同样没有梯度 |
| 需要与模型一起保存、加载的张量用 `register_buffer` | 用持久缓冲区（默认就是持久的）；它在状态字典里（第 5 步） |
| 需要自动设备管理的张量用 `register_buffer` | 任何缓冲区，持久与否，都会随模块移动和转换类型（第 2、4 步） |
| 直接赋值：临时计算结果、不需要保存的中间变量 | 只在一次前向传播中存在的值是局部变量，不是字段。在多次调用之间保留的张量（缓存）应该是非持久缓冲区（第 7 步），绝不能放在普通字段里，否则它会错过移动和类型转换 |
| 直接赋值：纯 Python 对象（非张量） | 在 Rust 里，其他类型的字段（尺寸、开关、字符串）属于配置：`#[derive(Module)]` 接受它们，但不会去动它们 |
| （文章的延迟计算，第 8 步）从 `None` 开始的缓冲区 | 加载永远不会填上它；要么自己把表算出来，要么把缓冲区设为非持久 |

**命名规范。** 文章建议用描述性的名字（`position_embeddings`、`attention_mask`），避免 `temp` 这样的名字。还要补充一点：这个名字就是它在每个检查点里的键，所以给缓冲区改名会让以前保存的所有文件都加载不了；与 PyTorch 互通的文件还必须使用 PyTorch 的键。在 crate 里，`#[module(rename = "...")]` 让字段在 Rust 里用描述性的名字，同时保留检查点里的键。不加 rename 时，名为 `position_encoding`（文章用的名字）的字段对应的键就是 `position_encoding`，严格加载 PyTorch 的文件会报出 `Missing key(s) in state_dict: "position_encoding".` 和 `Unexpected key(s) in state_dict: "pe".`。加上 rename，文件就能加载了：
""",
    ),
    code(
        """
#[derive(Module)]
struct NamedModel {
    embedding: Embedding,
    #[module(rename = "pe")]
    position_encoding: Buffer, // «a descriptive name in Rust, PyTorch's key in the file‖Rust 里用描述性的名字，文件里用 PyTorch 的键»
}

let mut named = NamedModel { embedding: Embedding::new(100, 8, 0)?, position_encoding: sinusoidal_table(6, 8)?.into() };
println!("{:?}", named.state_dict().keys().collect::<Vec<_>>());
println!("{}", named.load(reference_file("pytorch_pe_d8_len6.pth"), LoadMode::Strict)?);
"""
    ),
    md(
        en="""
## Summary

The article sums up what `register_buffer` provides; here is each point with the step that
showed it:

- **Automatic device management**: a buffer moves with `to_device` and casts with `to_dtype`;
  a directly assigned tensor does neither, and the forward pass then fails in candle (device
  mismatch on a GPU, step 2; dtype mismatch everywhere, step 4), while PyTorch silently
  promotes a dtype mismatch to float32.
- **State persistence**: persistent buffers are in the state dict and come back from a
  checkpoint, random ones included (steps 5, 6, 9). Non-persistent buffers are not, by design
  (step 7); a `None` buffer is not filled by a load (step 8).
- **Structural integrity**: parameters and buffers are listed apart (step 5); what keeps a
  buffer out of training is its absence from `parameters()`, not a lack of gradients (step 3).
- **Numerical consistency**: a loaded table is the saved one bit for bit; one recomputed
  elsewhere may differ in its last digits (step 7).

Lesson 1 ends with a cheat sheet of PyTorch calls and their crate counterparts, and a table of
symptoms and causes.
""",
        zh="""
## 总结

文章最后总结了 `register_buffer` 提供的几样东西；下面逐条列出，并注明是哪一步展示的：

- **自动设备管理**：缓冲区会随 `to_device` 移动、随 `to_dtype` 转换；直接赋值的张量两样都不会，于是前向传播在 candle 里出错（GPU 上是设备不匹配，第 2 步；任何机器上都会出现数据类型不匹配，第 4 步），而 PyTorch 会把数据类型不匹配悄悄提升为 float32。
- **状态持久化**：持久缓冲区在状态字典里，能从检查点恢复，随机生成的也一样（第 5、6、9 步）。非持久缓冲区有意不保存（第 7 步）；值为 `None` 的缓冲区不会被加载填上（第 8 步）。
- **结构完整性**：参数和缓冲区分开列出（第 5 步）；缓冲区不参与训练，是因为它不在 `parameters()` 里，而不是因为它没有梯度（第 3 步）。
- **数值一致性**：加载得到的表与保存的逐位相同；在别处重新计算的表可能在最后几位上不同（第 7 步）。

第 1 课最后有一张 PyTorch 与 crate 的对照速查表，以及一张“现象与原因”表。
""",
    ),
    md(
        exercise=True,
        en="""
## Exercises

Two exercises, each a cell you edit and a cell that checks it: the checker says what is
right, what is still wrong, and gives a hint; repeat until it shows ✓. If your cell does not
compile, rustc's message names the line: fix it, or copy the cell again from the committed
notebook, and run it before the checker. The answers are in
[02-positional-encoding-buffers-solutions.ipynb](02-positional-encoding-buffers-solutions.ipynb).

### (d) PyTorch's `pe` into your `position_embeddings`

`MyPositions` names its table `position_embeddings`, as the article recommends. Make a strict
load of PyTorch's `data/reference/pytorch_pe_d8_len6.pth`, whose key is `pe`, succeed, and
keep the field's Rust name.
""",
        zh="""
## 练习

下面有两道练习，每道练习都有一个供你修改的单元格和一个检查单元格：检查结果会指出哪里对了、哪里还不对，并给出提示；反复几次，直到出现 ✓。如果你的单元格编译不通过，rustc 的报错会指出是哪一行：改正它，或者从提交的笔记本里把原来的单元格复制回来，运行之后再运行检查单元格。参考答案在 [02-positional-encoding-buffers-solutions.ipynb](02-positional-encoding-buffers-solutions.ipynb) 里。

### (d) 把 PyTorch 的 `pe` 加载进你的 `position_embeddings`

按照文章的建议，`MyPositions` 把位置编码表命名为 `position_embeddings`。让严格模式加载 PyTorch 的 `data/reference/pytorch_pe_d8_len6.pth`（其中的键是 `pe`）能够成功，同时保留这个字段在 Rust 中的名字。
""",
    ),
    answer(
        "d",
        """
#[derive(Module)]
struct MyPositions {
    embedding: Embedding,
    position_embeddings: Buffer,
}

impl MyPositions {
    fn new() -> Result<Self> {
        Ok(Self { embedding: Embedding::new(100, 8, 0)?, position_embeddings: sinusoidal_table(6, 8)?.into() })
    }
}
""",
        solution="""
#[derive(Module)]
struct MyPositions {
    embedding: Embedding,
    #[module(rename = "pe")]
    position_embeddings: Buffer,
}

impl MyPositions {
    fn new() -> Result<Self> {
        Ok(Self { embedding: Embedding::new(100, 8, 0)?, position_embeddings: sinusoidal_table(6, 8)?.into() })
    }
}
""",
        wrong=[
            ("""
#[derive(Module)]
struct MyPositions {
    embedding: Embedding,
    #[module(rename = "position_encoding")]
    position_embeddings: Buffer,
}

impl MyPositions {
    fn new() -> Result<Self> {
        Ok(Self { embedding: Embedding::new(100, 8, 0)?, position_embeddings: sinusoidal_table(6, 8)?.into() })
    }
}
""", "the file's are `pe`, `embedding.weight`"),
            ("""
#[derive(Module)]
struct MyPositions {
    embedding: Embedding,
    #[module(persistent = false)]
    position_embeddings: Buffer,
}

impl MyPositions {
    fn new() -> Result<Self> {
        Ok(Self { embedding: Embedding::new(100, 8, 0)?, position_embeddings: sinusoidal_table(6, 8)?.into() })
    }
}
""", "a strict load of PyTorch's file fails"),
        ],
    ),
    check("d", "exercises::loads_pytorch_table(MyPositions::new).show();"),
    md(
        exercise=True,
        en="""
### (e) No table in the constructor, the table from the checkpoint

The article's lazy option, `register_buffer("pe", None)`, never gets its table from a
checkpoint (step 8). Change `LazyPositions` so that its constructor still does not compute
the table, and a strict load of PyTorch's file gives it PyTorch's table.
""",
        zh="""
### (e) 构造函数不算位置编码表，表从检查点里来

文章中的延迟计算写法 `register_buffer("pe", None)` 永远不会从检查点里得到位置编码表（第 8 步）。修改 `LazyPositions`：它的构造函数仍然不计算位置编码表，但严格模式加载 PyTorch 的文件之后，它能得到 PyTorch 的那张表。
""",
    ),
    answer(
        "e",
        """
#[derive(Module)]
struct LazyPositions {
    embedding: Embedding,
    pe: Option<Buffer>, // PyTorch: self.register_buffer("pe", None)
}

impl LazyPositions {
    fn new() -> Result<Self> {
        Ok(Self { embedding: Embedding::new(100, 8, 0)?, pe: None })
    }
}
""",
        solution="""
#[derive(Module)]
struct LazyPositions {
    embedding: Embedding,
    pe: Option<Buffer>, // «a placeholder now, which the checkpoint fills‖现在放一个占位张量，由检查点来填充»
}

impl LazyPositions {
    fn new() -> Result<Self> {
        Ok(Self { embedding: Embedding::new(100, 8, 0)?, pe: Some(Tensor::zeros((6, 8), DType::F32, &Device::Cpu)?.into()) })
    }
}
""",
        wrong=[
            ("""
#[derive(Module)]
struct LazyPositions {
    embedding: Embedding,
    pe: Option<Buffer>, // PyTorch: self.register_buffer("pe", None)
}

impl LazyPositions {
    fn new() -> Result<Self> {
        Ok(Self { embedding: Embedding::new(100, 8, 0)?, pe: Some(sinusoidal_table(6, 8)?.into()) })
    }
}
""", "your constructor still computes the table"),
            ("""
#[derive(Module)]
struct LazyPositions {
    embedding: Embedding,
    #[module(persistent = false)]
    pe: Option<Buffer>, // PyTorch: self.register_buffer("pe", None)
}

impl LazyPositions {
    fn new() -> Result<Self> {
        Ok(Self { embedding: Embedding::new(100, 8, 0)?, pe: Some(Tensor::zeros((6, 8), DType::F32, &Device::Cpu)?.into()) })
    }
}
""", "`pe` is non-persistent"),
        ],
    ),
    check("e", "exercises::lazy_table(LazyPositions::new).show();"),
    md(
        exercise=True,
        en="""
## Quiz

Five questions on what PyTorch does; each answer is hidden until you open it.

1. Does `load_state_dict` fill a buffer registered as `None`?
   <details><summary>Answer</summary>No: a <code>None</code> buffer is not in the module's state dict,
   so the checkpoint's key is unexpected: a strict load raises, a non-strict one leaves it
   <code>None</code> (step 8).</details>
2. Does `bf16 + f32` fail in PyTorch?
   <details><summary>Answer</summary>No: PyTorch promotes it to float32 without a word. candle
   refuses with <code>dtype mismatch in add</code> (step 4).</details>
3. Does a tensor assigned to a plain attribute get a gradient in the backward pass?
   <details><summary>Answer</summary>No: only <code>nn.Parameter</code>s (and tensors created with
   <code>requires_grad=True</code>) do. A buffer keeps out of training because it is not in
   <code>parameters()</code> (step 3).</details>
4. Is a non-persistent buffer moved by `model.to("cuda")`?
   <details><summary>Answer</summary>Yes: every buffer moves and casts with its module;
   <code>persistent=False</code> only keeps it out of the state dict (step 7).</details>
5. You rename a buffer from `pe` to `position_embeddings`. Do old checkpoints still load?
   <details><summary>Answer</summary>Not strictly: the key changed with the name. Keep the old key
   (in the crate, <code>#[module(rename = "pe")]</code>) or convert the files (step 10,
   exercise d).</details>
""",
        zh="""
## 小测验

五道关于 PyTorch 行为的题目，点开才能看到答案。

1. `load_state_dict` 会填充注册为 `None` 的缓冲区吗？
   <details><summary>答案</summary>不会：值为 <code>None</code> 的缓冲区不在模块的状态字典里，所以检查点里的这个键是多出来的键：严格加载会报错，非严格加载则让它保持 <code>None</code>（第 8 步）。</details>
2. 在 PyTorch 中，`bf16 + f32` 会报错吗？
   <details><summary>答案</summary>不会：PyTorch 会悄悄把结果提升为 float32。candle 则拒绝计算，报 <code>dtype mismatch in add</code>（第 4 步）。</details>
3. 赋值给普通属性的张量在反向传播中会得到梯度吗？
   <details><summary>答案</summary>不会：只有 <code>nn.Parameter</code>（以及创建时设置了 <code>requires_grad=True</code> 的张量）才会。缓冲区之所以不参与训练，是因为它不在 <code>parameters()</code> 里（第 3 步）。</details>
4. `model.to("cuda")` 会移动非持久缓冲区吗？
   <details><summary>答案</summary>会：所有缓冲区都随模块移动、转换类型；<code>persistent=False</code> 只是让它不进状态字典（第 7 步）。</details>
5. 你把一个缓冲区从 `pe` 改名为 `position_embeddings`，旧的检查点还能加载吗？
   <details><summary>答案</summary>严格模式下不能：名字变了，键也跟着变了。要么保留旧的键（在本 crate 中用 <code>#[module(rename = "pe")]</code>），要么转换旧文件（第 10 步，练习 d）。</details>
""",
    ),
]
