//! The lesson's models and data, built on [`crate::nn`]:
//!
//! - [`attention`]: the two causal-attention modules, which differ in one line;
//! - [`positional`]: lesson 2's positional-encoding models (buffer, non-persistent buffer,
//!   plain field);
//! - [`cost`]: what providing a mask costs, in time and memory;
//! - [`timing`]: lesson 2's timing of the three ways to provide a mask, with a conclusion
//!   that says only what its figures support;
//! - [`exercises`]: the lessons' exercises and the checkers that say what is right;
//! - [`data`]: the example sentence and the reference checkpoints PyTorch wrote.

pub mod attention;
pub mod cost;
pub mod data;
pub mod exercises;
pub mod positional;
pub mod timing;
