// cuda_info.cu - CUDA device discovery for pi_system_info. The CUDA kernels of the hybrid
// CPU+GPU path live beside this file as they are written.
#include <cuda_runtime.h>

#include <string>

#include "core/status.h"

namespace pi {

std::string cuda_info_json() {
    int       n   = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        return strprintf("{\"runtime_version\": %d, \"devices\": [], \"error\": \"%s\"}", CUDART_VERSION,
                         cudaGetErrorString(err));
    }
    std::string devices;
    for (int i = 0; i < n; i++) {
        cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
        if (!devices.empty()) devices += ", ";
        devices += strprintf("{\"name\": \"%s\", \"compute_capability\": \"%d.%d\", \"memory_bytes\": %zu}",
                             prop.name, prop.major, prop.minor, prop.totalGlobalMem);
    }
    return strprintf("{\"runtime_version\": %d, \"devices\": [%s]}", CUDART_VERSION, devices.c_str());
}

}  // namespace pi
