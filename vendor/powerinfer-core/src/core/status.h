// status.h - how failures travel inside the library.
//
// Internal code returns pi_status and records a message with pi::fail(); the public entry point
// just passes the status on. The message lives in a thread-local string that pi_last_error reads.
#pragma once

#include "powerinfer.h"

#include <cstdarg>
#include <string>

namespace pi {

// Records a printf-style message as this thread's last error and returns status.
pi_status fail(pi_status status, const char * fmt, ...) __attribute__((format(printf, 2, 3)));

// Logging through the user's callback (or stderr). Never writes to stdout.
void log(int32_t level, const char * fmt, ...) __attribute__((format(printf, 2, 3)));

std::string strprintf(const char * fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace pi

#define PI_LOG_D(...) ::pi::log(PI_LOG_DEBUG, __VA_ARGS__)
#define PI_LOG_I(...) ::pi::log(PI_LOG_INFO, __VA_ARGS__)
#define PI_LOG_W(...) ::pi::log(PI_LOG_WARN, __VA_ARGS__)
#define PI_LOG_E(...) ::pi::log(PI_LOG_ERROR, __VA_ARGS__)

// Propagates a failing status from an internal call.
#define PI_TRY(expr)                                    \
    do {                                                \
        pi_status pi_try_status_ = (expr);              \
        if (pi_try_status_ != PI_OK) return pi_try_status_; \
    } while (0)
