//! Devices: choosing the best one, naming them as PyTorch does, comparing by location.

use candle_core::{Device, DeviceLocation};

/// The best device compiled in and present: Apple GPU (Metal), then CUDA, then the CPU —
/// the order the PyTorch original now uses.
///
/// A device whose back end is not compiled in (features `metal`, `cuda`) is never chosen.
///
/// ```
/// let device = understanding_buffers::nn::device::best_device();
/// # #[cfg(not(any(feature = "cuda", feature = "metal")))]
/// assert!(device.is_cpu());
/// ```
pub fn best_device() -> Device {
    #[cfg(feature = "metal")]
    if let Ok(device) = Device::new_metal(0) {
        return device;
    }
    #[cfg(feature = "cuda")]
    if let Ok(device) = Device::new_cuda(0) {
        return device;
    }
    Device::Cpu
}

/// Which GPU back ends this build of the crate has.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut backends = Vec::new();
    if cfg!(feature = "metal") {
        backends.push("metal");
    }
    if cfg!(feature = "cuda") {
        backends.push("cuda");
    }
    backends
}

/// PyTorch's name for a location: `cpu`, `cuda:0`, `mps:0`.
pub fn location_name(location: DeviceLocation) -> String {
    match location {
        DeviceLocation::Cpu => "cpu".to_string(),
        DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        DeviceLocation::Metal { gpu_id } => format!("mps:{gpu_id}"),
    }
}

/// PyTorch's name for a device: `cpu`, `cuda:0`, `mps:0`.
///
/// ```
/// assert_eq!(understanding_buffers::nn::device::device_name(&candle_core::Device::Cpu), "cpu");
/// ```
pub fn device_name(device: &Device) -> String {
    location_name(device.location())
}

/// Whether two devices are the same place. Candle's `same_device` says two handles of one
/// GPU differ (each handle has its own id); the location (`cuda:0`) is what matters here.
pub fn same_location(a: &Device, b: &Device) -> bool {
    a.location() == b.location()
}
