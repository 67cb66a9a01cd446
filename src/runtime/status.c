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

const char *nst_cl_error_name(cl_int err) {
    switch (err) {
#define E(x) case x: return #x;
        E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE)
        E(CL_COMPILER_NOT_AVAILABLE) E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY) E(CL_PROFILING_INFO_NOT_AVAILABLE)
        E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH) E(CL_IMAGE_FORMAT_NOT_SUPPORTED)
        E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE) E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST) E(CL_COMPILE_PROGRAM_FAILURE)
        E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE) E(CL_DEVICE_PARTITION_FAILED)
        E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE)
        E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE) E(CL_INVALID_CONTEXT)
        E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_HOST_PTR)
        E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) E(CL_INVALID_IMAGE_SIZE)
        E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS)
        E(CL_INVALID_PROGRAM) E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME)
        E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX)
        E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS)
        E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE)
        E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST) E(CL_INVALID_EVENT)
        E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT) E(CL_INVALID_BUFFER_SIZE)
        E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE) E(CL_INVALID_PROPERTY)
        E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS) E(CL_INVALID_LINKER_OPTIONS)
        E(CL_INVALID_DEVICE_PARTITION_COUNT)
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
