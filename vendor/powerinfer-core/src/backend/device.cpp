// device.cpp - a device by name (device.h): the CPU stand-in always, CUDA devices in CUDA builds.
#include "backend/device.h"

#include "core/status.h"

#include <cstdlib>
#include <string>

namespace pi {

pi_status device_create(const char * name, uint64_t capacity, std::unique_ptr<device> * out) {
    out->reset();
    const std::string n = name ? name : "";
    if (n == "cpu-standin") {
        *out = standin_device_create(capacity);
        return PI_OK;
    }
    if (n == "cuda" || n.rfind("cuda:", 0) == 0) {
#if defined(PI_HAVE_CUDA)
        int index = 0;
        if (n.size() > 5) {
            char * end = nullptr;
            const long v = std::strtol(n.c_str() + 5, &end, 10);
            if (*end != '\0' || v < 0) return fail(PI_ERR_INVALID_ARGUMENT, "device \"%s\": expected cuda:N", n.c_str());
            index = (int)v;
        }
        return cuda_device_create(index, capacity, out);
#else
        return fail(PI_ERR_NOT_COMPILED, "device \"%s\": this build has no CUDA backend (reinstall with "
                    "CMAKE_ARGS=\"-DPOWERINFER_CUDA=ON\"); nothing is offloaded", n.c_str());
#endif
    }
    return fail(PI_ERR_INVALID_ARGUMENT, "unknown device \"%s\" (expected \"cpu-standin\" or \"cuda[:N]\")", n.c_str());
}

}  // namespace pi
