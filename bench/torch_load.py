"""`python bench/torch_load.py FILE`: times one torch.load(FILE, map_location="cpu") in this
fresh process and prints `<seconds> <peak bytes above the baseline> <tensors>`, the peak
read from the kernel (VmHWM, reset before the load, against VmRSS then; torch already imported)."""

import sys
import time

import torch


def status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def main():
    path = sys.argv[1]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    baseline = status_bytes("VmRSS:")
    start = time.perf_counter()
    sd = torch.load(path, map_location="cpu", weights_only=True)
    seconds = time.perf_counter() - start
    peak = status_bytes("VmHWM:") - baseline
    print(f"{seconds:.4f} {max(peak, 0)} {len(sd)}")


if __name__ == "__main__":
    main()
