/* status.c: the version, status names, OpenCL error names and the message
 * helpers. */
#include <stdio.h>
#include <string.h>

#include "nst_int.h"

const char *nst_version(void) {
    return NST_VERSION;
}

const char *nst_strerror(nst_status s) {
    switch (s) {
    case NST_OK: return "success";
    case NST_ERR_INVALID_ARG: return "invalid argument";
    case NST_ERR_NOMEM: return "out of memory";
    case NST_ERR_IO: return "input/output error";
    case NST_ERR_FORMAT: return "bad file format";
    case NST_ERR_NO_DEVICE: return "no such device";
    case NST_ERR_CL: return "OpenCL error";
    case NST_ERR_BUILD: return "kernel build failed";
    case NST_ERR_BLAS: return "BLAS error";
    case NST_ERR_NUMERIC: return "numerical failure";
    case NST_ERR_INTERRUPTED: return "interrupted";
    case NST_ERR_TOO_LARGE: return "too large";
    }
    return "unknown status";
}

nst_status nst_fail(nst_msg *msg, nst_status s, const char *fmt, ...) {
    if (msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg->text, sizeof msg->text, fmt, ap);
        va_end(ap);
    }
    return s;
}

nst_status nst_fail_null(nst_msg *msg, const char *fn, const char *arg) {
    return nst_fail(msg, NST_ERR_INVALID_ARG, "%s: %s is NULL", fn, arg);
}

/* The XSI strerror_r (returning int): the Makefile's _DEFAULT_SOURCE, not
 * _GNU_SOURCE, selects it. */
const char *nst_errno_text(int e, char *buf, size_t len) {
    if (strerror_r(e, buf, len) != 0) snprintf(buf, len, "error %d", e);
    return buf;
}

/* The names come from the OpenCL headers this was built with
 * (build/gen/cl_errors.h, made by the Makefile from their "Error Codes"). */
const char *nst_cl_error_name(cl_int err) {
    switch (err) {
#define E(code, name) case code: return name;
#include "cl_errors.h"
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    }
    return "unknown OpenCL error";
}

nst_status nst_fail_cl(nst_msg *msg, cl_int err, const char *what, const char *file, int line) {
    nst_status s = NST_ERR_CL;
    const char *hint = "";
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY) {
        s = NST_ERR_NOMEM;
        hint = " (the device ran out of memory: try a smaller --size)";
    } else if (err == CL_INVALID_BUFFER_SIZE) {
        s = NST_ERR_TOO_LARGE;
        hint = " (a buffer exceeds the device's maximum allocation: try a smaller --size)";
    } else if (err == CL_OUT_OF_RESOURCES) {
        hint = " (the device ran out of resources)";
    }
    return nst_fail(msg, s, "%s:%d %s: %s (%d)%s", file, line, what, nst_cl_error_name(err),
                    (int)err, hint);
}
