"""Lesson 1: understanding buffers. The source of notebooks/{en,zh}/01-understanding-buffers.ipynb
and examples/lesson1_understanding_buffers.rs (scripts/notebooks.py builds them).

Every text a code cell prints or draws comes in both languages, `language.pick(english, chinese)`,
with `language` from the set-up cell: the code cells are the same in both notebooks. Steps 5-8
run on `best_device()`; on a machine without a GPU each of their cells says, beside its output,
what it shows here and what it shows on a GPU, decided by `device.is_cpu()`."""

from cells import code, md

NAME = "01-understanding-buffers"
EXAMPLE = "lesson1_understanding_buffers"
TITLE = {"en": "Understanding buffers", "zh": "理解缓冲区"}

CELLS = [
    md(
        en="""
# Understanding buffers (in Rust, with candle)

*中文版: [01-understanding-buffers.ipynb](../zh/01-understanding-buffers.ipynb)*

This notebook follows the "Understanding PyTorch Buffers" bonus notebook of chapter 3 of
*Build a Large Language Model (From Scratch)* cell by cell, in Rust. The tensors come from
[candle](https://github.com/huggingface/candle); the module machinery PyTorch has and candle
lacks (parameters, **buffers**, state dicts, moving a whole module to a device) comes from this
project's small helper crate, `understanding_buffers`.

The first cell builds the crate: the first time it can take a few minutes, after that seconds.
The second sets the lesson up. It picks the notebook's language from the notebook's folder
(`en/` here), so that everything the cells print or draw is in English; panics then print one
readable line, and candle's errors come without a backtrace.
""",
        zh="""
# 理解缓冲区（用 Rust 和 candle 实现）

*English version: [01-understanding-buffers.ipynb](../en/01-understanding-buffers.ipynb)*

《从零构建大模型》（*Build a Large Language Model (From Scratch)*）第 3 章附有一个专讲 PyTorch 缓冲区（buffer）的笔记本。
本笔记本用 Rust 逐个单元格地把它重走一遍：张量运算交给 [candle](https://github.com/huggingface/candle) 完成；
PyTorch 有而 candle 没有的那部分模块机制，
即参数、缓冲区、状态字典，以及把整个模块移到某个设备上，由本项目的小型辅助 crate `understanding_buffers` 提供。

第一个代码单元格编译这个 crate，第一次可能要几分钟，以后只需几秒。第二个单元格为本课做准备：
它根据笔记本所在的文件夹（这里是 `zh/`）确定语言，之后各单元格打印的文字和图中的文字都是中文；
panic 只打印一行易读的信息，candle 的错误也不附带回溯。
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
## 1. What is a buffer?

A PyTorch module owns two kinds of tensors. **Parameters** are what training learns: a backward
pass gives each of them a gradient, and the optimizer, which is handed the module's parameters,
updates them. **Buffers** are never trained: they get no gradient and no optimizer step. Yet they
belong to the module just as much: they move with it to another device, are cast with it to
another dtype, and are saved in its **state dict**, the named tensors that `torch.save` writes and
`load_state_dict` reads back.

Saved, that is, if the buffer is **persistent**, which is the default. A buffer registered with
`register_buffer(name, tensor, persistent=False)` (in the crate: a `Buffer` field marked
`#[module(persistent = false)]`) is *non-persistent*: it still moves and casts with the module,
but the state dict leaves it out. The mask of this lesson is a persistent buffer; lesson 2 uses a
non-persistent one.

Chapter 3's causal attention keeps its causal mask as a buffer. The crate has that module,
`CausalAttentionWithBuffer` (step 8 shows its code), so "never trained" can be checked right away.
First a backward pass, with the weights PyTorch drew and the input of step 3: the three weights
get a gradient, the mask gets none. The second table is the same module with its mask in a plain
field, `CausalAttentionWithoutBuffers` (step 2): a plain tensor gets no gradient either. So
gradients are not what sets a buffer apart from a plain field; the rest of the lesson shows what
does.
""",
        zh="""
## 1. 什么是缓冲区？

PyTorch 模块拥有两类张量。**参数**（parameter）是训练要学习的量：反向传播为每个参数算出梯度，
优化器拿到模块的参数后据此更新它们。**缓冲区**（buffer）从不参与训练，既没有梯度，也不会被优化器更新；
但它同样属于模块：模块移到别的设备上，它也跟着移到那里；模块转换数据类型，它也一起转换；保存模块时，
它还会写进模块的**状态字典**（state dict），也就是 `torch.save` 写出、`load_state_dict` 读回的那组带名字的张量。

确切地说，只有**持久**（persistent）缓冲区才会写进状态字典，这也是默认情况。
用 `register_buffer(name, tensor, persistent=False)` 注册的缓冲区（在本 crate 中是标注了 `#[module(persistent = false)]` 的 `Buffer` 字段）是*非持久*的：它照样随模块移到别的设备、转换数据类型，
但不会写进状态字典。本课的掩码是持久缓冲区，第 2 课会用到非持久缓冲区。

第 3 章的因果注意力（causal attention）把因果掩码（mask）存成缓冲区。本 crate 提供了这个模块 `CausalAttentionWithBuffer`（第 8 步给出它的代码），
所以现在就可以验证“从不参与训练”这一点。
先做一次反向传播，权重用 PyTorch 生成的那组，输入用第 3 步的数据：三个权重都得到了梯度，掩码没有。
第二张表是把掩码存成普通字段的同一个模块 `CausalAttentionWithoutBuffers`（见第 2 步）：普通张量同样没有梯度。
可见，缓冲区与普通字段的区别并不在梯度上；区别究竟在哪里，正是本课后面要讲的。
""",
    ),
    code(
        """
let x = example_batch(&Device::Cpu)?; // the input of step 3
let mut model = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)?;
model.load(reference_file("seed123_with_buffer.safetensors"), true)?; // the weights PyTorch drew
model.gradients(&model.forward(&x)?.sum_all()?)?.show(); // backward() from a scalar, then each tensor's grad
"""
    ),
    code(
        """
let x = example_batch(&Device::Cpu)?;
let mut plain = CausalAttentionWithoutBuffers::new(3, 2, 6, 0.0, false)?;
plain.load(reference_file("seed123_without_buffer.safetensors"), true)?;
plain.gradients(&plain.forward(&x)?.sum_all()?)?.show();
"""
    ),
    md(
        en="""
Then the optimizer. In PyTorch it is handed `model.parameters()`, as in
`torch.optim.SGD(model.parameters(), lr=0.1)`; here candle's `SGD` is handed the crate's
`model.parameters()`, which holds the three weights and nothing else. One training step changes
the weights and leaves the mask exactly as it was.

Each of these three cells builds its input and its module itself instead of reusing those of
the cell before, because in evcxr a backward pass must run in the cell that created the tensors
it goes through. candle tells tensors apart by a number drawn from a counter, and every evcxr
cell starts that counter anew: a tensor made in one cell can carry the same number as one made
in another, and the backward pass then mixes them up.
""",
        zh="""
再看优化器。在 PyTorch 中，交给优化器的是 `model.parameters()`，例如 `torch.optim.SGD(model.parameters(), lr=0.1)`；
这里交给 candle 的 `SGD` 的，是本 crate 的 `model.parameters()`，其中只有三个权重，没有别的。
训练一步之后，权重变了，掩码原封不动。

这三个单元格都各自创建输入和模块，而不沿用前一个单元格里的，因为在 evcxr 中，反向传播必须在创建了相关张量的那个单元格里进行。
candle 用一个计数器给张量编号，而 evcxr 的每个单元格都让这个计数器从头计起：不同单元格里创建的两个张量可能编号相同，
反向传播就会把它们混为一谈。
""",
    ),
    code(
        """
let x = example_batch(&Device::Cpu)?;
let mut model = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)?;
model.load(reference_file("seed123_with_buffer.safetensors"), true)?;
let handed: Vec<String> = model.named_parameters().into_iter().map(|(name, _)| name).collect();
println!("{}{handed:?}", language.pick("model.parameters(): ", "model.parameters() 包含："));

let (w_query_before, mask_before) = (model.w_query.weight.copy()?, model.mask.copy()?);
let mut optimizer = SGD::new(model.parameters(), 0.1)?; // PyTorch: torch.optim.SGD(model.parameters(), lr=0.1)
optimizer.backward_step(&model.forward(&x)?.sum_all()?)?; // one training step

println!("{}\\n{}", language.pick("W_query.weight before the step:", "这一步之前的 W_query.weight："), TensorRepr(&w_query_before));
println!("{}\\n{}", language.pick("W_query.weight after it:", "这一步之后的 W_query.weight："), TensorRepr(&model.w_query.weight));
let mask_change = (model.mask.as_tensor() - &mask_before)?.abs()?.max_all()?.to_scalar::<f32>()?;
println!("{}{mask_change}", language.pick("Largest change of any mask value: ", "掩码中各个值的最大变化："));
"""
    ),
    md(
        en="""
## 2. Causal attention without buffers

Here is the module as the crate defines it. `#[derive(Module)]` gives the struct PyTorch's module
operations, and each field's type says what the field is. The query, key and value projections
are child modules (`#[module(rename = ...)]` gives them PyTorch's names `W_query`, `W_key`,
`W_value`), whose weights are parameters (`Param`). The mask, `triu(ones(T, T), diagonal=1)`, is
a plain `Tensor` field: the module can list it, but nothing moves, casts or saves it.

The forward pass hides the future in one line,
`masked_fill(&attn_scores, &self.mask, f32::NEG_INFINITY)`, PyTorch's
`attn_scores.masked_fill_(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)`. Step 5 comes
back to that line.
""",
        zh="""
## 2. 不用缓冲区的因果注意力

下面是本 crate 中这个模块的定义。`#[derive(Module)]` 让结构体具备 PyTorch 模块的各种操作，
每个字段的类型表明它是什么。查询、键、值三个投影是子模块（`#[module(rename = ...)]` 给它们取了 PyTorch 中的名字 `W_query`、`W_key`、`W_value`），
它们的权重是参数（`Param`）。掩码 `triu(ones(T, T), diagonal=1)` 是一个普通的 `Tensor` 字段：模块能列出它，但不会把它移到别的设备上，
不会转换它的数据类型，也不会保存它。

前向传播用一行代码遮住未来的词元：`masked_fill(&attn_scores, &self.mask, f32::NEG_INFINITY)`，
对应 PyTorch 的 `attn_scores.masked_fill_(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)`。
第 5 步还会回到这一行。
""",
    ),
    code('lesson_code::snippet("CausalAttentionWithoutBuffers")?.show();'),
    md(
        en="""
## 3. Run it on the CPU

The input is the six-token sentence "Your journey starts with one step", each token a
3-dimensional embedding, stacked twice into a batch of shape (2, 6, 3). The PyTorch original
calls `torch.manual_seed(123)` before building the module; candle cannot replay PyTorch's
random stream, so we load the weights PyTorch drew (they ship in `data/reference/`). The
output is PyTorch's, digit for digit.
""",
        zh="""
## 3. 在 CPU 上运行

输入是由六个词元组成的句子“Your journey starts with one step”，每个词元是一个 3 维嵌入向量，
把它叠两份，组成形状为 (2, 6, 3) 的批次。PyTorch 原版在创建模块前调用 `torch.manual_seed(123)`；
candle 无法复现 PyTorch 的随机数序列，所以我们直接加载 PyTorch 当时生成的权重（位于 `data/reference/`）。
输出与 PyTorch 的结果一位不差。
""",
    ),
    code(
        """
let batch = example_batch(&Device::Cpu)?;
let (context_length, d_in, d_out) = (batch.dim(1)?, batch.dim(2)?, 2);

let mut ca_without_buffer = CausalAttentionWithoutBuffers::new(d_in, d_out, context_length, 0.0, false)?;
ca_without_buffer.load(reference_file("seed123_without_buffer.safetensors"), true)?;

let context_vecs = ca_without_buffer.forward(&batch)?;
println!("{}", TensorRepr(&context_vecs));
"""
    ),
    md(
        en="""
## 4. Pick the best device

As the original does today: an Apple GPU (Metal) first, then an NVIDIA GPU (CUDA), then the
CPU. A back end counts only if the crate was built with it (features `metal`, `cuda`; the
README explains how to start the notebooks on a GPU).
""",
        zh="""
## 4. 选择最合适的设备

与原版现在的做法一致：先找苹果 GPU（Metal），再找 NVIDIA GPU（CUDA），都没有就用 CPU。
只有编译时启用了相应的后端（crate 的 `metal`、`cuda` 特性），它才会被考虑；如何在 GPU 上启动这些笔记本，见 README。
""",
    ),
    code(
        """
let device = best_device();
println!("{}", device_summary());
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
## 5. Move the module to the GPU and run it again

The original now moves the batch and the module to the GPU and runs the module again.
`to_device` moves every parameter and buffer the module knows about; the mask is neither, so it
stays on the CPU. PyTorch then stops inside the forward pass, at `masked_fill_`, with
`RuntimeError: expected self and mask to be on the same device, but got mask on cpu and self on cuda:0`.
candle stops at the same place for the same reason, in its own words:
`device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }` (`where` is candle's `where_cond`,
on which our `masked_fill` is built). The cell shows the error and the notebook keeps its state,
so you can go on.

On a machine without a GPU, `device` is the CPU: the move changes nothing and these cells work.
Each of them then says, beside its output, what it shows here and what it shows on a GPU.
Lesson 2, step 6 reproduces the same kind of bug on every machine, with dtypes instead of devices.
""",
        zh="""
## 5. 把模块移到 GPU 上再运行一次

原版接着把批次和模块移到 GPU 上，再运行一次模块。`to_device` 会把模块所知道的每一个参数和缓冲区移到目标设备上，
而掩码两者都不是，所以它留在 CPU 上。于是 PyTorch 在前向传播中的 `masked_fill_` 处报错：
`RuntimeError: expected self and mask to be on the same device, but got mask on cpu and self on cuda:0`。
candle 出错的位置和原因都一样，只是措辞不同：`device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }`
（`where` 指 candle 的 `where_cond`，我们的 `masked_fill` 就建立在它之上）。单元格会显示这个错误，
笔记本的状态不会丢失，可以接着往下运行。

在没有 GPU 的机器上，`device` 就是 CPU：移到设备上这一步什么也没改变，下面几个单元格都能正常运行。
这时每个单元格都会在输出旁边说明：在本机上看到的是什么，在 GPU 上又会看到什么。
第 2 课第 6 步会在任何机器上真实地重现同一类问题，只不过把设备换成了数据类型（dtype）。
""",
    ),
    code(
        """
let batch_on_device = batch.to_device(&device)?;
ca_without_buffer.to_device(&device)?;
match ca_without_buffer.forward(&batch_on_device) {
    Ok(context_vecs) => println!("{}", TensorRepr(&context_vecs)),
    Err(err) => show_error(&err),
};
if device.is_cpu() {
    println!("{}", language.pick(
        "This machine has no GPU: the module and its mask are both on cpu, so the forward pass works and prints step 3's numbers.\\n\\
         On a GPU the weights go to cuda:0, the mask stays on cpu, and this cell shows candle's error instead: device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }",
        "本机没有 GPU：模块和掩码都在 cpu 上，前向传播正常运行，打印的仍是第 3 步的结果。\\n\\
         在 GPU 上，权重会移到 cuda:0，掩码却留在 cpu，这个单元格显示的将是 candle 的报错：device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }",
    ));
} else {
    let (weights, mask) = (device_name(ca_without_buffer.w_query.weight.device()), device_name(ca_without_buffer.mask.device()));
    println!("{}", language.pick(
        &format!("On this GPU the weights are on {weights} and the mask on {mask}: that is the mismatch candle reports."),
        &format!("在这台 GPU 机器上，权重在 {weights}，掩码在 {mask}：candle 报告的正是这个不匹配。"),
    ));
};
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
The error comes from one operation, not from somewhere deep inside the module. Here is the
forward pass taken apart up to that point: the queries and keys, their scores, and then the
masked fill with the mask the module holds, the line of step 2.
""",
        zh="""
这个错误出自一个具体的运算，而不是模块内部某个说不清的地方。下面把前向传播拆开，一直走到出错的那一步：
先算查询和键，再算注意力分数，最后用模块持有的掩码做掩码填充，也就是第 2 步提到的那一行。
""",
    ),
    code(
        """
let queries = ca_without_buffer.w_query.forward(&batch_on_device)?;
let keys = ca_without_buffer.w_key.forward(&batch_on_device)?;
let attn_scores = queries.matmul(&keys.t()?)?;
println!("{}{}", language.pick("attn_scores device: ", "注意力分数所在的设备："), device_name(attn_scores.device()));
println!("{}{}", language.pick("mask device: ", "掩码所在的设备："), device_name(ca_without_buffer.mask.device()));
match masked_fill(&attn_scores, &ca_without_buffer.mask, f32::NEG_INFINITY) {
    Ok(masked) => println!("{}", TensorRepr(&masked.get(0)?)),
    Err(err) => show_error(&err),
};
if device.is_cpu() {
    println!("{}", language.pick(
        "This machine has no GPU: scores and mask are both on cpu, so masked_fill hides the future (-inf above the diagonal; the first sequence is shown).\\n\\
         On a GPU the scores are on cuda:0 and the mask on cpu, and this very call fails: device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }",
        "本机没有 GPU：注意力分数和掩码都在 cpu 上，masked_fill 遮住了未来的词元（对角线以上为 -inf；这里显示第一个序列）。\\n\\
         在 GPU 上，分数在 cuda:0，掩码在 cpu，正是这一次调用失败：device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }",
    ));
};
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
## 6. Diagnose it

Which tensors does the module hold, and where are they? The report lists every parameter and
buffer, and the plain tensor fields the derive found. A row whose tensor is not on the module's
device is highlighted. The kind column also shows that the mask is no parameter: as step 1
showed, an optimizer is never handed it.
""",
        zh="""
## 6. 诊断问题

模块持有哪些张量？它们分别在哪个设备上？下面的报告列出所有参数和缓冲区，以及派生宏找到的普通张量字段；
张量不在模块所在设备上的那一行会高亮显示。“类别”一列还表明掩码不是参数：第 1 步已经看到，优化器根本拿不到它。
""",
    ),
    code(
        """
if device.is_cpu() {
    println!("{}", language.pick(
        "This machine has no GPU: every row of the table below reads cpu, so no row is highlighted.\\n\\
         On a GPU the three weights read cuda:0, and the mask row (plain field, cpu) is highlighted: it is not on the module's device.",
        "本机没有 GPU：下表每一行都是 cpu，所以没有高亮的行。\\n\\
         在 GPU 上，三个权重显示 cuda:0，掩码那一行（普通字段，cpu）会高亮显示：它不在模块所在的设备上。",
    ));
} else {
    let mask = device_name(ca_without_buffer.mask.device());
    println!("{}", language.pick(
        &format!("The mask, a plain field, is on {mask}, not on the module's device: its row in the table below is highlighted."),
        &format!("掩码是普通字段，位于 {mask}，不在模块所在的设备上，所以下表中它那一行高亮显示。"),
    ));
};
ca_without_buffer.diagnostics().show();
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
The original prints the two devices itself. `check_devices` does the same check for every tensor
of the module and says what to do about the ones that strayed.
""",
        zh="""
原版直接打印这两个张量所在的设备。`check_devices` 则对模块的每个张量做同样的检查，并说明对不在该设备上的张量该怎么处理。
""",
    ),
    code(
        """
println!("{}{}", language.pick("W_query.weight device: ", "W_query.weight 所在的设备："), device_name(ca_without_buffer.w_query.weight.device()));
println!("{}{}", language.pick("mask device: ", "掩码所在的设备："), device_name(ca_without_buffer.mask.device()));
match ca_without_buffer.check_devices() {
    Ok(()) => {
        let module = device_name(&ca_without_buffer.device());
        println!("{}", language.pick(&format!("Every tensor is on {module}."), &format!("每个张量都在 {module} 上。")));
    }
    Err(err) => show_error(&err),
};
if device.is_cpu() {
    println!("{}", language.pick(
        "This machine has no GPU: both tensors are on cpu, and check_devices finds nothing wrong.\\n\\
         On a GPU the first line reads cuda:0 and the second cpu, and check_devices names the mask and how to fix it.",
        "本机没有 GPU：两个张量都在 cpu 上，check_devices 没有发现问题。\\n\\
         在 GPU 上，第一行显示 cuda:0，第二行显示 cpu，check_devices 会指出掩码，并说明如何修复。",
    ));
};
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
## 7. Fix it by hand

We can move the mask ourselves, and then the module runs and gives the same numbers as on the
CPU. It works as long as someone remembers: every tensor kept this way has to be moved by hand
after every `to_device`, in every module that has one, and a forgotten one shows only when the
model first runs on a GPU. Registering the tensor as a buffer hands that chore to the module.
""",
        zh="""
## 7. 手动修复

我们可以自己把掩码移到设备上，这样模块就能运行，结果与在 CPU 上相同。不过，这种办法要靠人记着：
凡是这样存放的张量，每次调用 `to_device` 之后都得手动移到同一设备上，哪个模块里有，哪个模块就得这样做；
漏掉一个，要等模型第一次在 GPU 上运行时才会暴露出来。把这类张量注册为缓冲区，这件事就交给了模块自己。
""",
    ),
    code(
        """
ca_without_buffer.mask = ca_without_buffer.mask.to_device(&device)?;
println!("{}{}", language.pick("mask device: ", "掩码所在的设备："), device_name(ca_without_buffer.mask.device()));
let context_vecs = ca_without_buffer.forward(&batch_on_device)?;
println!("{}", TensorRepr(&context_vecs));
if device.is_cpu() {
    println!("{}", language.pick(
        "This machine has no GPU: the mask was on cpu already, so the first line changed nothing, and the numbers are step 3's.\\n\\
         On a GPU it moves the mask to cuda:0, and the forward pass that failed in step 5 prints these numbers, on cuda:0.",
        "本机没有 GPU：掩码本来就在 cpu 上，第一行代码什么也没改变，结果仍是第 3 步的。\\n\\
         在 GPU 上，这行代码把掩码移到 cuda:0，第 5 步失败的前向传播这次能够运行，在 cuda:0 上得到同样的结果。",
    ));
};
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
## 8. Causal attention with a buffer

The same module, with the mask registered as a buffer. In PyTorch the change is one line,
`self.register_buffer("mask", torch.triu(...))`; in the crate it is one line too:
""",
        zh="""
## 8. 使用缓冲区的因果注意力

还是同一个模块，只是把掩码注册成了缓冲区。在 PyTorch 中只需改一行：`self.register_buffer("mask", torch.triu(...))`；
在本 crate 中同样只改一行：
""",
    ),
    code('lesson_code::snippet("CausalAttentionWithBuffer")?.show();'),
    md(
        en="""
Side by side, as a unified diff of the two snippets (doc comments left out, and the first
module's name read as the second's, so that `impl CausalAttentionWithBuffer {` stands for both
`impl` lines; `-` is the first module's line, `+` the second's, with three lines around them):
the one line that differs is the
`mask` field, a `Tensor` in the first module and a `Buffer` in the second. The constructor and the
forward pass are the same text in both, and read `self.mask` the same way.
""",
        zh="""
下面用统一差异格式（unified diff）对比两段代码（文档注释略去；第一个模块的名字按第二个模块的名字看待，所以 `impl CausalAttentionWithBuffer {` 这一行代表两个模块各自的 `impl` 行；`-` 开头的是第一个模块的行，`+` 开头的是第二个模块的行，
前后各留三行上下文）：唯一不同的一行是 `mask` 字段，第一个模块里它是 `Tensor`，第二个模块里是 `Buffer`。
两个模块的构造函数和前向传播是一字不差的同一段代码，读取 `self.mask` 的方式也相同。
""",
    ),
    code('lesson_code::difference("CausalAttentionWithoutBuffers", "CausalAttentionWithBuffer")?.show();'),
    md(
        en="""
Build it with the weights PyTorch drew next after `torch.manual_seed(123)`, move it to the
device, and run it. `to_device` now takes the mask along, so the forward pass needs no help.
""",
        zh="""
用 PyTorch 在 `torch.manual_seed(123)` 之后接着生成的那组权重创建它，移到设备上，再运行。
这一次 `to_device` 会把掩码一起移到设备上，前向传播无须任何额外处理。
""",
    ),
    code(
        """
let mut ca_with_buffer = CausalAttentionWithBuffer::new(d_in, d_out, context_length, 0.0, false)?;
ca_with_buffer.load(reference_file("seed123_with_buffer.safetensors"), true)?;
ca_with_buffer.to_device(&device)?;

println!("{}{}", language.pick("W_query.weight device: ", "W_query.weight 所在的设备："), device_name(ca_with_buffer.w_query.weight.device()));
println!("{}{}", language.pick("mask device: ", "掩码所在的设备："), device_name(ca_with_buffer.mask.device()));
let context_vecs = ca_with_buffer.forward(&batch_on_device)?;
println!("{}", TensorRepr(&context_vecs));
if device.is_cpu() {
    println!("{}", language.pick(
        "This machine has no GPU: both tensors are on cpu, so all this shows here is the buffered module giving PyTorch's numbers.\\n\\
         On a GPU both lines read cuda:0: to_device moved the mask with the weights, and the forward pass works with no hand-work.",
        "本机没有 GPU：两个张量都在 cpu 上，这里能看到的只是带缓冲区的模块给出了与 PyTorch 相同的结果。\\n\\
         在 GPU 上，两行都会显示 cuda:0：to_device 把掩码连同权重一起移到了 GPU 上，前向传播无须任何手动处理就能运行。",
    ));
} else {
    let mask = device_name(ca_with_buffer.mask.device());
    println!("{}", language.pick(
        &format!("The mask is on {mask}: to_device moved it with the weights."),
        &format!("掩码在 {mask} 上：to_device 把它连同权重一起移到了这里。"),
    ));
};
""",
        tags=["device-dependent"],
    ),
    code(
        """
if device.is_cpu() {
    println!("{}", language.pick(
        "This machine has no GPU: every row of the table below reads cpu.\\n\\
         On a GPU every row reads cuda:0, the mask buffer's too, and no row is highlighted.",
        "本机没有 GPU：下表每一行都是 cpu。\\n\\
         在 GPU 上，每一行都会显示 cuda:0，掩码这个缓冲区也不例外，没有哪一行需要高亮。",
    ));
};
ca_with_buffer.diagnostics().show();
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
## 9. Buffers and the state dict

A state dict lists a module's parameters and persistent buffers (step 1) by name, in PyTorch's
order: the module's own parameters, then its own buffers, then each child's. So `mask` comes
first, then the three weights. The unbuffered module's state dict has no mask at all.
""",
        zh="""
## 9. 缓冲区与状态字典

状态字典按名称列出模块的参数和持久缓冲区（见第 1 步），顺序与 PyTorch 相同：先是模块自己的参数，
再是它自己的缓冲区，最后是各个子模块的内容。因此 `mask` 排在最前面，后面是三个权重。
不用缓冲区的模块，其状态字典里根本没有掩码。
""",
    ),
    code("println!(\"{}\", ca_with_buffer.state_dict());", tags=["device-dependent"]),
    code("println!(\"{}\", ca_without_buffer.state_dict());", tags=["device-dependent"]),
    md(
        en="""
## 10. The mask round trip

A causal mask never changes in training, and no real model edits it. Here we change it on
purpose, only to see afterwards whether it was saved: every 1 becomes a 2 (in PyTorch:
`ca_with_buffer.mask[ca_with_buffer.mask == 1.] = 2.`). Then we save the state dict and load it
into a fresh module, whose constructor builds a mask of 1s. If the 2s come back, the mask was in
the file.
""",
        zh="""
## 10. 掩码的保存与加载往返

因果掩码在训练中从不改变，实际的模型也不会去改它。这里特意改动它，只是为了事后看清它有没有被保存：
把每个 1 都改成 2（PyTorch 写法：`ca_with_buffer.mask[ca_with_buffer.mask == 1.] = 2.`）。
然后保存状态字典，再加载到一个新建的模块里；新模块的构造函数生成的掩码里是 1。如果加载后看到的是 2，
就说明掩码确实存进了文件。
""",
    ),
    code(
        """
ca_with_buffer.mask = Buffer::new((ca_with_buffer.mask.as_tensor() * 2.0)?); // the mask holds only 0s and 1s
println!("{}", TensorRepr(&ca_with_buffer.mask));
""",
        tags=["device-dependent"],
    ),
    code(
        """
let dir = scratch_dir()?;
ca_with_buffer.save(dir.join("model.pth"))?;

let mut new_ca_with_buffer = CausalAttentionWithBuffer::new(d_in, d_out, context_length, 0.0, false)?;
new_ca_with_buffer.load(dir.join("model.pth"), true)?;
println!("{}", TensorRepr(&new_ca_with_buffer.mask));
"""
    ),
    md(
        en="""
The buffered module's mask came back with its 2s. Now the same with the unbuffered module: its
mask is changed too, but it is not in the state dict, so the fresh module keeps the mask its
constructor built, full of 1s.
""",
        zh="""
带缓冲区的模块，掩码带着它的 2 回来了。再对不用缓冲区的模块做同样的事：它的掩码也改了，
但掩码不在状态字典里，所以新模块保留的是构造函数生成的掩码，里面仍然是 1。
""",
    ),
    code(
        """
ca_without_buffer.mask = (&ca_without_buffer.mask * 2.0)?;
ca_without_buffer.save(dir.join("model.pth"))?;

let mut new_ca_without_buffer = CausalAttentionWithoutBuffers::new(d_in, d_out, context_length, 0.0, false)?;
new_ca_without_buffer.load(dir.join("model.pth"), true)?;
println!("{}", TensorRepr(&new_ca_without_buffer.mask));
"""
    ),
    md(
        en="""
Loading is strict by default, as in PyTorch: every key must match. The unbuffered module's state
dict lacks `mask`, so loading it strictly into the buffered module is an error, in PyTorch's
words.

What the failed load leaves behind differs, on purpose. PyTorch's `load_state_dict` first copies
every tensor whose key matches, and raises only then: after this call in PyTorch,
`new_ca_with_buffer.W_query.weight` would already hold the unbuffered module's weights, although
the call failed. The crate checks every key and shape before it copies anything, so a failed load
changes nothing: a module half loaded by a call that failed is easy to miss. The second cell prints
the weight before and after the failed load, and what PyTorch would have left in it.
""",
        zh="""
与 PyTorch 一样，加载默认是严格模式：键必须一一对应。不用缓冲区的模块，其状态字典里缺少 `mask`，
所以把它严格加载到带缓冲区的模块中会报错，错误信息的措辞与 PyTorch 相同。

加载失败之后模块处于什么状态，两者有意不同。PyTorch 的 `load_state_dict` 会先把键能对上的张量全部复制过去，
然后才报错：在 PyTorch 中执行这一调用之后，尽管调用失败了，
`new_ca_with_buffer.W_query.weight` 里装的已经是不用缓冲区的那个模块的权重。本 crate 则在复制任何数据之前先检查所有的键和形状，
所以加载失败时模块保持原样：调用失败、模块却已被加载了一半，这种情况很难察觉。第二个单元格打印加载失败前后的这个权重，
以及 PyTorch 会在其中留下的值。
""",
    ),
    code(
        """
let w_query_before = new_ca_with_buffer.w_query.weight.copy()?;
match new_ca_with_buffer.load_state_dict(&ca_without_buffer.state_dict(), true) {
    Ok(keys) => println!("{keys}"),
    Err(err) => show_error(&err),
};
""",
        tags=["intended-error"],
        expect=['Missing key(s) in state_dict: "mask".'],
    ),
    code(
        """
println!("{}\\n{}", language.pick("W_query.weight before the failed load:", "加载失败之前的 W_query.weight："), TensorRepr(&w_query_before));
println!("{}\\n{}", language.pick("W_query.weight after it:", "加载失败之后的 W_query.weight："), TensorRepr(&new_ca_with_buffer.w_query.weight));
println!("{}\\n{}", language.pick("what PyTorch's failed load would have copied into it:", "PyTorch 加载失败时会复制进去的值："), TensorRepr(&ca_without_buffer.w_query.weight));
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
A non-strict load is PyTorch's too: it copies the tensors whose keys match and reports the keys
that did not, instead of failing.
""",
        zh="""
非严格加载的行为也与 PyTorch 相同：它复制键能对上的张量，并报告对不上的键，而不报错。
""",
    ),
    code(
        """
let mut lenient = CausalAttentionWithBuffer::new(d_in, d_out, context_length, 0.0, false)?;
println!("{}", lenient.load_state_dict(&ca_without_buffer.state_dict(), false)?);
println!("{}\\n{}", language.pick("W_query.weight, copied:", "复制过来的 W_query.weight："), TensorRepr(&lenient.w_query.weight));
"""
    ),
    md(
        en="""
## 11. Interchange with PyTorch

The crate reads PyTorch's `.pth` files (without running any code from them) and safetensors
files, and writes both. `data/reference/model_with_buffer_mask2.pth` was saved by PyTorch from
the buffered module with the 2s mask, on `cuda:0`; it loads here, keys in PyTorch's order.
""",
        zh="""
## 11. 与 PyTorch 互通

本 crate 能读取 PyTorch 的 `.pth` 文件（不会执行文件中的任何代码）和 safetensors 文件，也能写出这两种格式。
`data/reference/model_with_buffer_mask2.pth` 是 PyTorch 在 `cuda:0` 上保存的、掩码里是 2 的带缓冲区模块，
在这里可以直接加载，键的顺序与 PyTorch 一致。
""",
    ),
    code(
        """
let from_pytorch = checkpoint::load(reference_file("model_with_buffer_mask2.pth"), &Device::Cpu)?;
println!("{:?}", from_pytorch.keys().collect::<Vec<_>>());

let mut from_torch_model = CausalAttentionWithBuffer::new(d_in, d_out, context_length, 0.0, false)?;
from_torch_model.load_state_dict(&from_pytorch, true)?;
println!("{}", TensorRepr(&from_torch_model.mask));
"""
    ),
    md(
        en="""
And the other way round: a `.pth` file written here loads in PyTorch with
`torch.load("model_for_pytorch.pth")` (PyTorch's default `weights_only=True` unpickler accepts
it), and a `.safetensors` file with `safetensors.torch.load_file`.
""",
        zh="""
反过来也可以：这里写出的 `.pth` 文件可以在 PyTorch 中用 `torch.load("model_for_pytorch.pth")` 加载
（PyTorch 默认的 `weights_only=True` 反序列化器接受它），`.safetensors` 文件则用 `safetensors.torch.load_file` 加载。
""",
    ),
    code(
        """
new_ca_with_buffer.save(dir.join("model_for_pytorch.pth"))?;
new_ca_with_buffer.save(dir.join("model_for_pytorch.safetensors"))?;
let back = checkpoint::load(dir.join("model_for_pytorch.safetensors"), &Device::Cpu)?;
println!("{}", language.pick(
    &format!("{} tensors, {} bytes of data", back.len(), back.size_in_bytes()),
    &format!("{} 个张量，数据共 {} 字节", back.len(), back.size_in_bytes()),
));
"""
    ),
    md(
        en="""
## 12. Pictures

The mask as a heat map, before and after the round trip (through the buffer), and the attention
weights of the first sequence: the causal triangle. Each token attends only to itself and the
tokens before it.
""",
        zh="""
## 12. 图示

用热力图展示往返前后的掩码（经由缓冲区保存和加载），以及第一个序列的注意力权重，即因果三角形：
每个词元只关注它自己和它之前的词元。
""",
    ),
    code(
        """
plots::heatmap(&causal_mask(context_length)?, language.pick("Causal mask before the round trip", "往返前的因果掩码"),
               language.pick("key position", "键的位置"), language.pick("query position", "查询的位置"))?.show();
"""
    ),
    code(
        """
plots::heatmap(&new_ca_with_buffer.mask, language.pick("Mask after the round trip, as a buffer", "作为缓冲区往返后的掩码"),
               language.pick("key position", "键的位置"), language.pick("query position", "查询的位置"))?.show();
"""
    ),
    code(
        """
let weights = ca_with_buffer.attention_weights(&batch_on_device)?.get(0)?;
plots::heatmap(&weights, language.pick("Attention weights: the causal triangle", "注意力权重：因果三角形"),
               language.pick("key position", "键的位置"), language.pick("query position", "查询的位置"))?.show();
""",
    ),
    md(
        en="""
## 13. Summary

| the tensor is… | make it a | moved and cast with the module | in the state dict | trained |
|---|---|---|---|---|
| learned (weights, biases) | parameter | yes | yes | yes |
| fixed but part of the model (a causal mask, batch norm's running statistics such as `running_mean`) | buffer | yes | yes | no |
| derived, cheap to rebuild (a large lookup table) | non-persistent buffer | yes | no | no |
| not the module's (a scratch value, something the caller owns) | plain field | no | no | no |

Use a buffer whenever a tensor must follow the module to its device and dtype. A plain field
works only as long as everyone remembers to move it by hand — and the error you get when
someone forgets is the device mismatch of step 5.
""",
        zh="""
## 13. 小结

| 张量是…… | 应当设为 | 随模块移到设备上、转换数据类型 | 写入状态字典 | 参与训练 |
|---|---|---|---|---|
| 学出来的（权重、偏置） | 参数 | 是 | 是 | 是 |
| 固定不变、但属于模型（因果掩码、批归一化的滑动统计量 `running_mean`） | 缓冲区 | 是 | 是 | 否 |
| 可由其他量推导、重建代价低（较大的查找表） | 非持久缓冲区 | 是 | 否 | 否 |
| 不属于模块（临时值、调用者自己持有的东西） | 普通字段 | 否 | 否 | 否 |

只要一个张量必须跟着模块到同一个设备上、用同一种数据类型，就把它注册成缓冲区。普通字段只有在每个人都记得手动把它移到设备上时才管用；
一旦有人忘了，得到的就是第 5 步里那个设备不匹配的错误。
""",
    ),
]
