"""Lesson 1: understanding buffers. The source of notebooks/{en,zh}/01-understanding-buffers.ipynb
and examples/lesson1_understanding_buffers.rs (scripts/notebooks.py builds them)."""

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

The first cell builds the crate. The first time it can take a few minutes; after that, seconds.
""",
        zh="""
# 理解缓冲区（用 Rust 和 candle 实现）

*English version: [01-understanding-buffers.ipynb](../en/01-understanding-buffers.ipynb)*

《从零构建大模型》（*Build a Large Language Model (From Scratch)*）第 3 章有一个附加笔记本，
专门讲 PyTorch 的缓冲区（buffer）。本笔记本用 Rust 把它逐个单元格地重走一遍：张量运算由
[candle](https://github.com/huggingface/candle) 完成；而 PyTorch 有、candle 没有的那部分模块机制——参数、
**缓冲区**、状态字典、把整个模块搬到某个设备上——由本项目的小型辅助 crate `understanding_buffers` 提供。

第一个代码单元格会编译这个 crate。第一次运行可能要几分钟，之后只需几秒。
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
## 1. What is a buffer?

A PyTorch module owns two kinds of tensors. **Parameters** are trained: the optimizer
updates them. **Buffers** are not trained, yet they belong to the module just the same: they
move with it when it goes to another device, and they are saved in its state dict.

The causal attention of chapter 3 keeps its causal mask as a buffer. To see why that matters,
we first write the module *without* one.
""",
        zh="""
## 1. 什么是缓冲区？

PyTorch 模块拥有两类张量。**参数**（parameter）参与训练，由优化器更新；**缓冲区**（buffer）不参与训练，
但同样属于模块：模块换到别的设备时它跟着走，保存模块时它也写进状态字典（state dict）。

第 3 章的因果注意力（causal attention）就把因果掩码（mask）存成缓冲区。为了看清这样做的意义，
我们先写一个*不用*缓冲区的版本。
""",
    ),
    md(
        en="""
## 2. Causal attention without buffers

Here is the module as the crate defines it. `#[derive(Module)]` gives the struct PyTorch's module
operations, and each field's type says what the field is. The query, key and value projections
are child modules (`#[module(rename = ...)]` gives them PyTorch's names `W_query`, `W_key`,
`W_value`), whose weights are parameters (`Param`). The mask, `triu(ones(T, T), diagonal=1)`, is
a plain `Tensor` field: the module can list it, but nothing moves, casts or saves it.
""",
        zh="""
## 2. 不用缓冲区的因果注意力

下面是 crate 中这个模块的定义。`#[derive(Module)]` 让这个结构体具备 PyTorch 模块的各种操作，
每个字段的类型说明了它是什么。查询、键、值三个投影是子模块（`#[module(rename = ...)]` 给它们取了 PyTorch 的名字
`W_query`、`W_key`、`W_value`），它们的权重是参数（`Param`）。掩码 `triu(ones(T, T), diagonal=1)` 是一个普通的
`Tensor` 字段：模块能列出它，但不会搬动、转换或保存它。
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

输入是六个词元的句子 "Your journey starts with one step"，每个词元是一个 3 维嵌入向量，
叠两份组成形状为 (2, 6, 3) 的批次。PyTorch 原版在创建模块前调用 `torch.manual_seed(123)`；
candle 无法复现 PyTorch 的随机数序列，所以我们直接加载 PyTorch 当时生成的权重（放在 `data/reference/` 里）。
输出与 PyTorch 的结果逐位相同。
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
只有编译时启用了相应后端（crate 的 `metal`、`cuda` 特性），才会被考虑；如何在 GPU 上启动这些笔记本，见 README。
""",
    ),
    code(
        """
let device = best_device();
println!("Machine has GPU: {}", !device.is_cpu());
println!("{}", device_summary());
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
## 5. Move the module to the GPU and run it again

`to_device` moves every parameter and buffer the module knows about. The mask is not one of
them. On a GPU the forward pass therefore fails: the scores are on the GPU, the mask is still on
the CPU, and candle refuses to mix them — the same bug as PyTorch's
`RuntimeError: expected self and mask to be on the same device, but got mask on cpu and self on cuda:0`.
On a GPU machine this cell shows candle's error, e.g.
`device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }`.

On a machine without a GPU there is no second device, so nothing can go wrong here; the cell
says so. Lesson 2 (step 4) shows the same kind of bug for real on every machine, with dtypes
instead of devices.
""",
        zh="""
## 5. 把模块搬到 GPU 上再运行一次

`to_device` 会搬动模块所知道的每一个参数和缓冲区，而掩码不在其中。于是在 GPU 上前向传播会失败：
注意力分数在 GPU 上，掩码却还留在 CPU 上，candle 拒绝把两者混在一起运算。这和 PyTorch 报的错
`RuntimeError: expected self and mask to be on the same device, but got mask on cpu and self on cuda:0`
是同一个问题。在有 GPU 的机器上，这个单元格会显示 candle 的报错，例如
`device mismatch in where, lhs: Cpu, rhs: Cuda { gpu_id: 0 }`。

在没有 GPU 的机器上没有第二个设备，这里不会出错，单元格会直接说明这一点。第 2 课第 4 步会在任何机器上
真实地重现同一类问题——只不过换成了数据类型（dtype）而不是设备。
""",
    ),
    code(
        """
let batch_on_device = batch.to_device(&device)?;
ca_without_buffer.to_device(&device)?;
if device.is_cpu() {
    println!("No GPU on this machine / 本机没有 GPU: the module and its mask both stay on the CPU, so the");
    println!("forward pass below succeeds. On a GPU it fails; lesson 2, step 4 shows the same bug with dtypes.");
}
match ca_without_buffer.forward(&batch_on_device) {
    Ok(context_vecs) => println!("{}", TensorRepr(&context_vecs)),
    Err(err) => show_error(&err),
};
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
## 6. Diagnose it

Which tensors does the module hold, and where are they? The report lists every parameter and
buffer, and the plain tensor fields the derive found. On a GPU the weights are on `cuda:0`
while the mask, a plain field the module never moved, is still on `cpu` (highlighted). The mask
is no parameter either: an optimizer would never see it.
""",
        zh="""
## 6. 诊断问题

模块持有哪些张量？它们分别在哪个设备上？下面的报告列出所有参数、缓冲区，以及派生宏找到的普通张量字段。
在 GPU 上，权重位于 `cuda:0`，而掩码作为模块从未搬动过的普通字段，仍然在 `cpu` 上（会高亮显示）。
掩码也不是参数：优化器根本看不到它。
""",
    ),
    code("ca_without_buffer.diagnostics().show();", tags=["device-dependent"]),
    code(
        """
println!("W_query.weight device: {}", device_name(ca_without_buffer.w_query.weight.device()));
println!("mask device:           {}", device_name(ca_without_buffer.mask.device()));
match ca_without_buffer.check_devices() {
    Ok(()) => println!("every tensor is on {}", device_name(&ca_without_buffer.device())),
    Err(err) => show_error(&err),
};
""",
        tags=["device-dependent"],
    ),
    md(
        en="""
## 7. Fix it by hand

We can move the mask ourselves; then the module runs and gives the same numbers as on the
CPU. It works, but every such tensor in every module has to be remembered, by every user, each
time the module moves. That is exactly the bookkeeping buffers do for us.
""",
        zh="""
## 7. 手动修复

我们可以自己把掩码搬过去，这样模块就能运行，结果与 CPU 上完全相同。办法可行，但每个模块里的每个这类张量，
每个使用者在每次搬动模块时都得记着处理。缓冲区替我们做的，正是这份记账工作。
""",
    ),
    code(
        """
ca_without_buffer.mask = ca_without_buffer.mask.to_device(&device)?;
println!("mask device: {}", device_name(ca_without_buffer.mask.device()));
let context_vecs = ca_without_buffer.forward(&batch_on_device)?;
println!("{}", TensorRepr(&context_vecs));
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

同一个模块，只是把掩码注册成缓冲区。在 PyTorch 中只改一行：`self.register_buffer("mask", torch.triu(...))`；
在这个 crate 里同样只改一行：
""",
    ),
    code('lesson_code::snippet("CausalAttentionWithBuffer")?.show();'),
    md(
        en="""
Side by side, as a unified diff (`-` the first module's line, `+` the second's, with the lines
around them): the two modules differ in one line, the type of the `mask` field. The constructor
and the forward pass are the same code in both; they read `self.mask` the same way, whether it
is a `Tensor` or a `Buffer`.
""",
        zh="""
把两个模块放在一起，以统一差异格式（unified diff）对比（`-` 是第一个模块的行，`+` 是第二个的，周围是上下文）：
两者只差一行，即 `mask` 字段的类型。构造函数和前向传播在两个模块里是同样的代码；无论 `self.mask` 是 `Tensor`
还是 `Buffer`，读取它的方式都一样。
""",
    ),
    code('lesson_code::difference("CausalAttentionWithoutBuffers", "CausalAttentionWithBuffer")?.show();'),
    md(
        en="""
Build it with the weights PyTorch drew next after `torch.manual_seed(123)`, move it to the
device, and run it: the mask went along, so the forward pass works.
""",
        zh="""
用 PyTorch 在 `torch.manual_seed(123)` 之后接着生成的权重创建它，搬到设备上再运行：
掩码跟着模块一起走了，所以前向传播可以正常运行。
""",
    ),
    code(
        """
let mut ca_with_buffer = CausalAttentionWithBuffer::new(d_in, d_out, context_length, 0.0, false)?;
ca_with_buffer.load(reference_file("seed123_with_buffer.safetensors"), true)?;
ca_with_buffer.to_device(&device)?;

println!("W_query.weight device: {}", device_name(ca_with_buffer.w_query.weight.device()));
println!("mask device:           {}", device_name(ca_with_buffer.mask.device()));
let context_vecs = ca_with_buffer.forward(&batch_on_device)?;
println!("{}", TensorRepr(&context_vecs));
""",
        tags=["device-dependent"],
    ),
    code("ca_with_buffer.diagnostics().show();", tags=["device-dependent"]),
    md(
        en="""
A buffer is never trained. A backward pass through the module shows it: the weights are
variables (PyTorch: `requires_grad`) and get a gradient (`grad`); the mask is no variable and
gets none, as a PyTorch buffer has `requires_grad == False` and `.grad is None`. The plain-field
mask of the first module gets none either: what a plain field costs is its device, its dtype
and its place in the checkpoint, not gradients.
""",
        zh="""
缓冲区从不参与训练。对模块做一次反向传播就能看到：权重是变量（PyTorch 中的 `requires_grad`），会得到梯度
（`grad`）；掩码不是变量，得不到梯度——正如 PyTorch 的缓冲区 `requires_grad == False`、`.grad is None`。
第一个模块里作为普通字段的掩码同样得不到梯度：普通字段的代价在于设备、数据类型和能否存进检查点，而不在于梯度。
""",
    ),
    code(
        """
let loss = ca_with_buffer.forward(&batch_on_device)?.sum_all()?;
ca_with_buffer.gradients(&loss)?.show();
"""
    ),
    md(
        en="""
## 9. Buffers and the state dict

A state dict lists a module's parameters and persistent buffers by name, in PyTorch's order:
the module's own parameters, then its own buffers, then each child's. So `mask` comes first,
then the three weights. The unbuffered module's state dict has no mask at all.
""",
        zh="""
## 9. 缓冲区与状态字典

状态字典按名称列出模块的参数和持久缓冲区，顺序与 PyTorch 相同：先是模块自己的参数，再是自己的缓冲区，
最后是各个子模块的内容。因此 `mask` 排在最前面，后面是三个权重。不用缓冲区的模块，其状态字典里根本没有掩码。
""",
    ),
    code("println!(\"{}\", ca_with_buffer.state_dict());", tags=["device-dependent"]),
    code("println!(\"{}\", ca_without_buffer.state_dict());", tags=["device-dependent"]),
    md(
        en="""
## 10. The mask round trip

Change every 1 in the mask to 2 (in PyTorch: `ca_with_buffer.mask[ca_with_buffer.mask == 1.] = 2.`),
save the state dict, and load it into a fresh module.
""",
        zh="""
## 10. 掩码的保存与加载往返

把掩码中的每个 1 改成 2（PyTorch 写法：`ca_with_buffer.mask[ca_with_buffer.mask == 1.] = 2.`），
保存状态字典，再加载到一个新建的模块里。
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
使用缓冲区的模块，掩码带着它的 2 回来了。再对不用缓冲区的模块做同样的事：它的掩码也改了，
但掩码不在状态字典里，所以新模块保留的是构造函数生成的掩码，里面全是 1。
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
words, and the module is left unchanged. A non-strict load reports the mismatched keys instead.
""",
        zh="""
与 PyTorch 一样，加载默认是严格模式：键必须一一对应。不用缓冲区的模块，其状态字典里缺少 `mask`，
所以把它严格加载到使用缓冲区的模块中会报错（错误信息的措辞与 PyTorch 相同），模块本身保持不变。
非严格加载则会把对不上的键报告出来。
""",
    ),
    code(
        """
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
let mut lenient = CausalAttentionWithBuffer::new(d_in, d_out, context_length, 0.0, false)?;
println!("{}", lenient.load_state_dict(&ca_without_buffer.state_dict(), false)?);
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

这个 crate 能读取 PyTorch 的 `.pth` 文件（不会执行文件中的任何代码）和 safetensors 文件，也能写出这两种格式。
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
（PyTorch 默认的 `weights_only=True` 反序列化器可以接受它），`.safetensors` 文件则用 `safetensors.torch.load_file` 加载。
""",
    ),
    code(
        """
new_ca_with_buffer.save(dir.join("model_for_pytorch.pth"))?;
new_ca_with_buffer.save(dir.join("model_for_pytorch.safetensors"))?;
let back = checkpoint::load(dir.join("model_for_pytorch.safetensors"), &Device::Cpu)?;
println!("{} tensors, {} bytes of data", back.len(), back.size_in_bytes());
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

用热力图展示往返前后的掩码（经由缓冲区保存和加载），以及第一个序列的注意力权重——因果三角形：
每个词元只关注它自己和它之前的词元。
""",
    ),
    code(
        """
plots::heatmap(&causal_mask(context_length)?, "Causal mask before the round trip / 往返前的因果掩码",
               "key position / 键的位置", "query position / 查询的位置")?.show();
"""
    ),
    code(
        """
plots::heatmap(&new_ca_with_buffer.mask, "Mask after the round trip, as a buffer / 作为缓冲区往返后的掩码",
               "key position / 键的位置", "query position / 查询的位置")?.show();
"""
    ),
    code(
        """
let weights = ca_with_buffer.attention_weights(&batch_on_device)?.get(0)?;
plots::heatmap(&weights, "Attention weights: the causal triangle / 注意力权重：因果三角形",
               "key position / 键的位置", "query position / 查询的位置")?.show();
""",
    ),
    md(
        en="""
## 13. Summary

| the tensor is… | make it a | moved and cast with the module | in the state dict | trained |
|---|---|---|---|---|
| learned (weights, biases) | parameter | yes | yes | yes |
| fixed but part of the model (a causal mask, running statistics) | buffer | yes | yes | no |
| derived, cheap to rebuild (a large lookup table) | non-persistent buffer | yes | no | no |
| not the module's (a scratch value, something the caller owns) | plain field | no | no | no |

Use a buffer whenever a tensor must follow the module to its device and dtype. A plain field
works only as long as everyone remembers to move it by hand — and the error you get when
someone forgets is the device mismatch of step 5.
""",
        zh="""
## 13. 小结

| 张量是…… | 应当设为 | 随模块搬动设备、转换类型 | 写入状态字典 | 参与训练 |
|---|---|---|---|---|
| 学出来的（权重、偏置） | 参数 | 是 | 是 | 是 |
| 固定不变、但属于模型（因果掩码、运行统计量） | 缓冲区 | 是 | 是 | 否 |
| 可由其他量推导、重建代价低（较大的查找表） | 非持久缓冲区 | 是 | 否 | 否 |
| 不属于模块（临时值、调用者自己持有的东西） | 普通字段 | 否 | 否 | 否 |

只要一个张量必须跟着模块去同一个设备、用同一种数据类型，就把它注册成缓冲区。普通字段只有在每个人都记得手动搬动它时才管用；
一旦有人忘了，得到的就是第 5 步里那个设备不匹配的错误。
""",
    ),
]
