// status.cpp - last-error storage, status names and the log sink.
#include "core/status.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace {

thread_local std::string g_last_error;

std::mutex        g_log_mutex;
pi_log_callback   g_log_callback  = nullptr;
void *            g_log_user_data = nullptr;
std::atomic<int>  g_log_level{PI_LOG_WARN};

std::string vformat(const char * fmt, va_list args) {
    va_list copy;
    va_copy(copy, args);
    int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    if (n <= 0) return std::string();
    std::string out(static_cast<size_t>(n), '\0');
    std::vsnprintf(&out[0], out.size() + 1, fmt, args);
    return out;
}

}  // namespace

namespace pi {

pi_status fail(pi_status status, const char * fmt, ...) {
    va_list args;
    va_start(args, fmt);
    g_last_error = vformat(fmt, args);
    va_end(args);
    return status;
}

std::string strprintf(const char * fmt, ...) {
    va_list args;
    va_start(args, fmt);
    std::string s = vformat(fmt, args);
    va_end(args);
    return s;
}

void log(int32_t level, const char * fmt, ...) {
    if (level < g_log_level.load(std::memory_order_relaxed)) return;
    va_list args;
    va_start(args, fmt);
    std::string text = vformat(fmt, args);
    va_end(args);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    std::lock_guard<std::mutex> lock(g_log_mutex);
    if (g_log_callback) {
        g_log_callback(level, text.c_str(), g_log_user_data);
    } else {
        std::fprintf(stderr, "powerinfer: %s\n", text.c_str());
    }
}

}  // namespace pi

extern "C" {

const char * pi_status_str(pi_status status) {
    switch (status) {
        case PI_OK:                   return "PI_OK";
        case PI_ERR_INVALID_ARGUMENT: return "PI_ERR_INVALID_ARGUMENT";
        case PI_ERR_IO:               return "PI_ERR_IO";
        case PI_ERR_FORMAT:           return "PI_ERR_FORMAT";
        case PI_ERR_UNSUPPORTED:      return "PI_ERR_UNSUPPORTED";
        case PI_ERR_OUT_OF_MEMORY:    return "PI_ERR_OUT_OF_MEMORY";
        case PI_ERR_CONTEXT_FULL:     return "PI_ERR_CONTEXT_FULL";
        case PI_ERR_BUFFER_TOO_SMALL: return "PI_ERR_BUFFER_TOO_SMALL";
        case PI_ERR_NOT_COMPILED:     return "PI_ERR_NOT_COMPILED";
        case PI_ERR_ABORTED:          return "PI_ERR_ABORTED";
        case PI_ERR_INTERNAL:         return "PI_ERR_INTERNAL";
    }
    return "PI_ERR_UNKNOWN";
}

const char * pi_last_error(void) { return g_last_error.c_str(); }

void pi_log_set(pi_log_callback callback, void * user_data) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_log_callback  = callback;
    g_log_user_data = user_data;
}

void pi_log_set_level(int32_t level) { g_log_level.store(level, std::memory_order_relaxed); }

}  // extern "C"
