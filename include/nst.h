/* nst.h: the public C API of nst, neural style transfer on OpenCL.
 *
 * Every call returns an nst_status; on failure a human-readable message is
 * left in the runtime (nst_last_error) or in the nst_msg the call was given.
 * The library never exits, aborts or prints. Whoever creates an object frees
 * it; every _free/_close accepts NULL. */
#ifndef NST_H
#define NST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NST_VERSION "0.1.0"

typedef enum nst_status {
    NST_OK = 0,
    NST_ERR_INVALID_ARG, /* a parameter is out of range or malformed */
    NST_ERR_NOMEM,       /* host or device memory could not be had */
    NST_ERR_IO,          /* a file could not be read or written */
    NST_ERR_FORMAT,      /* a file is not what it claims to be */
    NST_ERR_NO_DEVICE,   /* no OpenCL device, or the selection matched none */
    NST_ERR_CL,          /* an OpenCL call failed */
    NST_ERR_BUILD,       /* an OpenCL program failed to compile */
    NST_ERR_BLAS,        /* a CLBlast routine failed */
    NST_ERR_NUMERIC,     /* a NaN or Inf appeared */
    NST_ERR_INTERRUPTED, /* the caller asked the run to stop */
    NST_ERR_TOO_LARGE    /* the work does not fit the device or a limit */
} nst_status;

/* A short name for a status ("invalid argument", "OpenCL error", ...). */
const char *nst_strerror(nst_status s);

/* A message buffer for calls that have no runtime (image and weight files). */
typedef struct nst_msg {
    char text[1024];
} nst_msg;

/* ---- devices and the runtime ------------------------------------------ */

typedef struct nst_device_info {
    int index;              /* position in nst's flat list over all platforms */
    char platform[128];
    char name[128];
    char vendor[128];
    char version[64];       /* CL_DEVICE_VERSION */
    char driver[64];        /* CL_DRIVER_VERSION */
    char c_version[64];     /* CL_DEVICE_OPENCL_C_VERSION */
    char type[16];          /* "GPU", "CPU", "accelerator", "other" */
    uint64_t global_mem;    /* bytes */
    uint64_t max_alloc;     /* bytes */
    uint64_t local_mem;     /* bytes */
    unsigned compute_units;
    size_t max_work_group;
    int fp16;               /* cl_khr_fp16 present */
    int is_default;         /* the device nst picks when nothing is asked */
} nst_device_info;

/* Lists every device of every platform. *out is malloc'ed; free() it.
 * A platform with no devices is skipped, not an error. */
nst_status nst_devices_list(nst_device_info **out, int *count, nst_msg *msg);

/* Resolves a selection to an index in the list: NULL or "" means the
 * NST_DEVICE environment variable, else the default (the GPU with the most
 * memory, else any accelerator, else a CPU). A selection is a decimal index
 * or a case-insensitive substring of "platform name" or "device name". */
nst_status nst_device_select(const nst_device_info *devs, int count, const char *sel,
                             int *index, nst_msg *msg);

typedef struct nst_runtime nst_runtime;

typedef struct nst_runtime_options {
    const char *device;  /* selection as for nst_device_select; NULL = default */
    int no_cache;        /* 1: never read or write the program-binary cache */
    int profile;         /* 1: record per-kernel timings (nst bench) */
} nst_runtime_options;

nst_status nst_runtime_open(nst_runtime **out, const nst_runtime_options *opt, nst_msg *msg);
void nst_runtime_close(nst_runtime *rt);
const char *nst_last_error(const nst_runtime *rt);
const nst_device_info *nst_runtime_device(const nst_runtime *rt);

#ifdef __cplusplus
}
#endif
#endif
