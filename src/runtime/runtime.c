/* runtime.c: OpenCL platforms and devices, device selection, and the
 * runtime (context + in-order queue on one device). */
#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl_ext.h>

#include "nst_int.h"

#ifndef CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV
#define CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV 0x4000 /* cl_nv_device_attribute_query */
#endif

/* ---- listing ------------------------------------------------------------ */

/* A device string, truncated to fit buf (a longer string than buf would make
 * clGetDeviceInfo fail: PoCL's CL_DEVICE_VERSION runs past 64 bytes). */
static void dev_str(cl_device_id d, cl_device_info p, char *buf, size_t len) {
    size_t need = 0;
    buf[0] = 0;
    if (clGetDeviceInfo(d, p, 0, NULL, &need) != CL_SUCCESS || need == 0) return;
    char *tmp = malloc(need + 1);
    if (tmp && clGetDeviceInfo(d, p, need, tmp, NULL) == CL_SUCCESS) {
        tmp[need] = 0;
        snprintf(buf, len, "%s", tmp);
    }
    free(tmp);
}

static void fill_info(cl_platform_id p, cl_device_id d, int index, nst_device_info *info) {
    memset(info, 0, sizeof *info);
    info->index = index;
    if (clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof info->platform, info->platform, NULL) !=
        CL_SUCCESS)
        info->platform[0] = 0;
    info->platform[sizeof info->platform - 1] = 0;
    dev_str(d, CL_DEVICE_NAME, info->name, sizeof info->name);
    dev_str(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    dev_str(d, CL_DEVICE_VERSION, info->version, sizeof info->version);
    dev_str(d, CL_DRIVER_VERSION, info->driver, sizeof info->driver);
    dev_str(d, CL_DEVICE_OPENCL_C_VERSION, info->c_version, sizeof info->c_version);
    cl_device_type type = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    strcpy(info->type, (type & CL_DEVICE_TYPE_GPU)           ? "GPU"
                       : (type & CL_DEVICE_TYPE_ACCELERATOR) ? "accelerator"
                       : (type & CL_DEVICE_TYPE_CPU)         ? "CPU"
                                                             : "other");
    cl_ulong u = 0;
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof u, &u, NULL);
    info->global_mem = u;
    u = 0;
    clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof u, &u, NULL);
    info->max_alloc = u;
    u = 0;
    clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof u, &u, NULL);
    info->local_mem = u;
    cl_uint cu = 0;
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    info->compute_units = cu;
    size_t wg = 0;
    clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    info->max_work_group = wg;
    size_t elen = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &elen) == CL_SUCCESS && elen > 0) {
        char *ext = malloc(elen + 1);
        if (ext && clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, elen, ext, NULL) == CL_SUCCESS) {
            ext[elen] = 0;
            info->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
        }
        free(ext);
    }
    /* TF32 tensor cores: NVIDIA from compute capability 8.0 (Ampere) */
    cl_uint cc_major = 0;
    if (strstr(info->vendor, "NVIDIA") &&
        clGetDeviceInfo(d, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, sizeof cc_major, &cc_major,
                        NULL) == CL_SUCCESS)
        info->tf32 = cc_major >= 8;
    cl_bool unified = CL_FALSE;
    if (clGetDeviceInfo(d, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL) ==
        CL_SUCCESS)
        info->host_unified = unified == CL_TRUE;
}

/* Calls fn for every device of every platform, in a stable order. */
typedef int (*dev_visit)(cl_platform_id p, cl_device_id d, int index, void *ctx);

static nst_status visit_devices(dev_visit fn, void *ctx, nst_msg *msg) {
    cl_uint np = 0;
    cl_int e = clGetPlatformIDs(0, NULL, &np);
    if (e == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (e == CL_SUCCESS && np == 0))
        return nst_fail(msg, NST_ERR_NO_DEVICE,
                        "no OpenCL platform is installed; on Debian or Ubuntu install one "
                        "with 'sudo apt-get install pocl-opencl-icd' (CPU) or your GPU "
                        "vendor's OpenCL driver");
    if (e != CL_SUCCESS) return nst_fail_cl(msg, e, "clGetPlatformIDs", __FILE__, __LINE__);
    cl_platform_id *ps = calloc(np, sizeof *ps);
    if (!ps) return nst_fail(msg, NST_ERR_NOMEM, "listing OpenCL platforms");
    e = clGetPlatformIDs(np, ps, NULL);
    if (e != CL_SUCCESS) {
        free(ps);
        return nst_fail_cl(msg, e, "clGetPlatformIDs", __FILE__, __LINE__);
    }
    int index = 0, stop = 0;
    for (cl_uint i = 0; i < np && !stop; i++) {
        cl_uint nd = 0;
        /* A platform without devices (Mesa's Clover, say) is simply empty. */
        if (clGetDeviceIDs(ps[i], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
            continue;
        cl_device_id *ds = calloc(nd, sizeof *ds);
        if (!ds) {
            free(ps);
            return nst_fail(msg, NST_ERR_NOMEM, "listing OpenCL devices");
        }
        if (clGetDeviceIDs(ps[i], CL_DEVICE_TYPE_ALL, nd, ds, NULL) == CL_SUCCESS) {
            for (cl_uint j = 0; j < nd && !stop; j++) stop = fn(ps[i], ds[j], index++, ctx);
        }
        free(ds);
    }
    free(ps);
    return NST_OK;
}

typedef struct list_ctx {
    nst_device_info *devs;
    int count, cap;
    int oom;
} list_ctx;

static int list_one(cl_platform_id p, cl_device_id d, int index, void *vctx) {
    list_ctx *c = vctx;
    if (c->count == c->cap) {
        int cap = c->cap ? 2 * c->cap : 8;
        nst_device_info *n = realloc(c->devs, (size_t)cap * sizeof *n);
        if (!n) {
            c->oom = 1;
            return 1;
        }
        c->devs = n;
        c->cap = cap;
    }
    fill_info(p, d, index, &c->devs[c->count++]);
    return 0;
}

static int default_index(const nst_device_info *devs, int count) {
    int best = -1;
    for (int i = 0; i < count; i++)
        if (!strcmp(devs[i].type, "GPU") && (best < 0 || devs[i].global_mem > devs[best].global_mem))
            best = i;
    if (best >= 0) return best;
    for (int i = 0; i < count; i++)
        if (!strcmp(devs[i].type, "accelerator")) return i;
    for (int i = 0; i < count; i++)
        if (!strcmp(devs[i].type, "CPU")) return i;
    return count > 0 ? 0 : -1;
}

/* PoCL's name for its platform. */
#define POCL_PLATFORM "Portable Computing Language"

static int has_platform(const char *name) {
    cl_platform_id ps[16];
    cl_uint np = 0;
    if (clGetPlatformIDs(16, ps, &np) != CL_SUCCESS) return 0;
    for (cl_uint i = 0; i < np && i < 16; i++) {
        char pn[128] = "";
        if (clGetPlatformInfo(ps[i], CL_PLATFORM_NAME, sizeof pn, pn, NULL) == CL_SUCCESS &&
            !strncmp(pn, name, sizeof pn))
            return 1;
    }
    return 0;
}

/* PoCL lists no device when it cannot create its cache directory `dir`
 * (nst_settings.pocl_cache_dir). 1 (with the reason) when a PoCL platform is
 * installed and that directory can be neither found nor created: the deepest
 * existing ancestor is not a writable directory. */
static int pocl_cache_unusable(const char *dir, char *why, size_t wlen) {
    if (!*dir) return 0;
    if (!has_platform(POCL_PLATFORM)) return 0;
    char p[NST_PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (;;) {
        struct stat sb;
        if (stat(p, &sb) == 0) {
            if (!S_ISDIR(sb.st_mode)) {
                snprintf(why, wlen, "%s is not a directory", p);
                return 1;
            }
            if (access(p, W_OK | X_OK) != 0) {
                snprintf(why, wlen, "%s: %s", p, strerror(errno));
                return 1;
            }
            return 0; /* creatable: something else is wrong */
        }
        /* missing (or below a file): look at the parent */
        char *slash = strrchr(p, '/');
        if (!slash || !strcmp(p, "/")) break;
        if (slash == p)
            p[1] = 0;
        else
            *slash = 0;
    }
    return 0;
}

nst_status nst_devices_list(nst_device_info **out, int *count, nst_msg *msg) {
    if (!out) return nst_fail_null(msg, "nst_devices_list", "out");
    if (!count) return nst_fail_null(msg, "nst_devices_list", "count");
    return nst_devices_list_with(NULL, out, count, msg);
}

nst_status nst_devices_list_with(const nst_settings *set, nst_device_info **out, int *count,
                                 nst_msg *msg) {
    if (!out) return nst_fail_null(msg, "nst_devices_list_with", "out");
    if (!count) return nst_fail_null(msg, "nst_devices_list_with", "count");
    const char *pocl_dir = set ? set->pocl_cache_dir : "";
    list_ctx c = {0};
    nst_status st = visit_devices(list_one, &c, msg);
    if (st == NST_OK && c.oom) st = nst_fail(msg, NST_ERR_NOMEM, "listing OpenCL devices");
    char why[NST_PATH_MAX + 100];
    if (st == NST_OK && c.count == 0 && pocl_cache_unusable(pocl_dir, why, sizeof why))
        st = nst_fail(msg, NST_ERR_NO_DEVICE,
                      "PoCL, the CPU OpenCL driver, is installed but cannot create its kernel "
                      "cache directory %s (%s); set XDG_CACHE_HOME (or POCL_CACHE_DIR) to a "
                      "writable directory, e.g. XDG_CACHE_HOME=/tmp/cache",
                      pocl_dir, why);
    else if (st == NST_OK && c.count == 0)
        st = nst_fail(msg, NST_ERR_NO_DEVICE,
                      "OpenCL platforms are installed but none has a device; install "
                      "'pocl-opencl-icd' for the CPU or your GPU vendor's OpenCL driver");
    if (st != NST_OK) {
        free(c.devs);
        return st;
    }
    int d = default_index(c.devs, c.count);
    if (d >= 0) c.devs[d].is_default = 1;
    *out = c.devs;
    *count = c.count;
    return NST_OK;
}

/* ---- selection ---------------------------------------------------------- */

static int contains_nocase(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return n == 0;
}

static void list_into(const nst_device_info *devs, int count, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < count && used < len; i++) {
        int k = snprintf(buf + used, len - used, "%s  %d: %s / %s (%s)", i ? "\n" : "", devs[i].index,
                         devs[i].platform, devs[i].name, devs[i].type);
        if (k < 0) break;
        used += (size_t)k;
    }
}

/* nst_device_select, with the origin of sel for the messages. */
static nst_status select_from(const nst_device_info *devs, int count, const char *sel,
                              const char *origin, int *index, nst_msg *msg) {
    if (!index) return nst_fail_null(msg, "nst_device_select", "index");
    if (count < 0)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "nst_device_select: count %d is negative",
                        count);
    if (!devs && count > 0) return nst_fail_null(msg, "nst_device_select", "devs");
    if (!sel || !*sel) {
        int d = default_index(devs, count);
        if (d < 0) return nst_fail(msg, NST_ERR_NO_DEVICE, "no OpenCL device found");
        *index = d;
        return NST_OK;
    }
    char avail[700];
    list_into(devs, count, avail, sizeof avail);
    char *end = NULL;
    long v = strtol(sel, &end, 10);
    if (end != sel && *end == 0) {
        if (v < 0 || v >= count)
            return nst_fail(msg, NST_ERR_NO_DEVICE,
                            "%s %s: there is no device %ld; the devices are:\n%s", origin, sel, v,
                            avail);
        *index = (int)v;
        return NST_OK;
    }
    for (int i = 0; i < count; i++) {
        if (contains_nocase(devs[i].name, sel) || contains_nocase(devs[i].platform, sel)) {
            *index = i;
            return NST_OK;
        }
    }
    return nst_fail(msg, NST_ERR_NO_DEVICE,
                    "%s '%s' matches no device name or platform; the devices are:\n%s", origin, sel,
                    avail);
}

nst_status nst_device_select(const nst_device_info *devs, int count, const char *sel, int *index,
                             nst_msg *msg) {
    return select_from(devs, count, sel, "--device", index, msg);
}

/* ---- the runtime -------------------------------------------------------- */

typedef struct find_ctx {
    int want;
    cl_platform_id p;
    cl_device_id d;
} find_ctx;

static int find_one(cl_platform_id p, cl_device_id d, int index, void *vctx) {
    find_ctx *c = vctx;
    if (index != c->want) return 0;
    c->p = p;
    c->d = d;
    return 1;
}

nst_status nst_runtime_open(nst_runtime **out, const nst_runtime_options *opt, nst_msg *msg) {
    nst_status st = NST_OK;
    nst_device_info *devs = NULL;
    int count = 0, index = -1;
    nst_runtime *rt = NULL;
    cl_int e = CL_SUCCESS;
    nst_settings zero = {0};
    const nst_settings *set = opt && opt->settings ? opt->settings : &zero;
    if (!out) return nst_fail_null(msg, "nst_runtime_open", "out");
    NST_TRY(nst_settings_check(set, msg));
    NST_TRY(nst_devices_list_with(set, &devs, &count, msg));
    if (opt && opt->device && *opt->device)
        NST_TRY(select_from(devs, count, opt->device, "--device", &index, msg));
    else
        NST_TRY(select_from(devs, count, set->device, "NST_DEVICE", &index, msg));
    find_ctx fc = {index, NULL, NULL};
    NST_TRY(visit_devices(find_one, &fc, msg));
    if (!fc.d) {
        st = nst_fail(msg, NST_ERR_NO_DEVICE, "device %d disappeared while starting", index);
        goto fail;
    }
    rt = calloc(1, sizeof *rt);
    if (!rt) {
        st = nst_fail(msg, NST_ERR_NOMEM, "runtime");
        goto fail;
    }
    rt->platform = fc.p;
    rt->device = fc.d;
    rt->info = devs[index];
    rt->settings = *set;
    rt->no_cache = set->no_cache || (opt && opt->no_cache);
    rt->profile = opt && opt->profile;
    NST_TRY(nst_gemm_setup(rt, rt->settings.gemm, msg));
    if (!strcmp(set->precision, "tf32")) {
        if (!rt->info.tf32) {
            st = nst_fail(msg, NST_ERR_INVALID_ARG,
                          "precision tf32 needs tensor cores (an NVIDIA GPU of compute "
                          "capability 8.0 or later); %s has none: use fp32 (the default) or "
                          "choose such a device with --device (nst devices lists them)",
                          rt->info.name);
            goto fail;
        }
        if (rt->gemm_host) {
            st = nst_fail(msg, NST_ERR_INVALID_ARG,
                          "precision tf32 runs the products on the device, not on the host "
                          "BLAS: unset NST_GEMM=host");
            goto fail;
        }
        rt->tf32 = 1;
    }
    /* PoCL keeps compiled programs in its own cache; asking it for a binary
     * would compile every kernel of the program on the spot */
    rt->cache_binaries = strcmp(rt->info.platform, POCL_PLATFORM) != 0;
    if (!rt->cache_binaries && !*set->pocl_cache_dir)
        rt->no_cache = 1; /* PoCL compiles every time: nothing worth noting */
    if (!rt->no_cache) {
        char dir[NST_PATH_MAX], why[NST_PATH_MAX + 100];
        if (nst_cache_dir_why(rt, dir, sizeof dir, why, sizeof why) != 0) {
            rt->no_cache = 1;
            snprintf(rt->warning, sizeof rt->warning,
                     "nst's kernel cache is off: %s; set NST_CACHE_DIR (or XDG_CACHE_HOME) to a "
                     "writable directory to keep compiled kernels between runs",
                     why);
        }
    }
    rt->cl12 = strncmp(rt->info.c_version, "OpenCL C 1.0", 12) != 0 &&
               strncmp(rt->info.c_version, "OpenCL C 1.1", 12) != 0;
    cl_uint align_bits = 1024;
    clGetDeviceInfo(rt->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits,
                    NULL);
    rt->mem_align = align_bits / 8 ? align_bits / 8 : 128;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)rt->platform, 0};
    rt->ctx = clCreateContext(props, 1, &rt->device, NULL, NULL, &e);
    NST_CL(msg, e);
    rt->queue = clCreateCommandQueue(rt->ctx, rt->device,
                                     rt->profile ? CL_QUEUE_PROFILING_ENABLE : 0, &e);
    NST_CL(msg, e);
    free(devs);
    *out = rt;
    return NST_OK;
fail:
    free(devs);
    nst_runtime_close(rt);
    return st;
}

void nst_runtime_close(nst_runtime *rt) {
    if (!rt) return;
    if (rt->queue) clFinish(rt->queue);
    for (int i = 0; i < rt->nevents; i++)
        if (rt->events[i].ev) clReleaseEvent(rt->events[i].ev);
    free(rt->events);
    nst_buffer_free(rt, rt->gemm_temp);
    nst_buffer_free(rt, rt->scratch[0]);
    nst_buffer_free(rt, rt->scratch[1]);
    for (int i = 0; i < rt->nkernels; i++) clReleaseKernel(rt->kernels[i].kernel);
    for (int i = 0; i < NST_MAX_PROGRAMS; i++)
        if (rt->programs[i]) clReleaseProgram(rt->programs[i]);
    if (rt->queue) clReleaseCommandQueue(rt->queue);
    if (rt->ctx) clReleaseContext(rt->ctx);
    free(rt);
}

const char *nst_last_error(const nst_runtime *rt) {
    return rt ? rt->msg.text
              : "the runtime is NULL: calls given no runtime only return their status (if "
                "nst_runtime_open failed, its nst_msg says why)";
}

const nst_device_info *nst_runtime_device(const nst_runtime *rt) { return rt ? &rt->info : NULL; }

const char *nst_runtime_warning(const nst_runtime *rt) { return rt ? rt->warning : ""; }

uint64_t nst_runtime_peak_bytes(const nst_runtime *rt) { return rt ? rt->mem_peak : 0; }

nst_status nst_finish(nst_runtime *rt) {
    nst_status st = NST_OK;
    NST_CL(RTM(rt), clFinish(rt->queue));
fail:
    return st;
}

static void profile_add(nst_runtime *rt, const char *name, cl_event ev, double host_ms) {
    if (rt->nevents == rt->cap_events) {
        int cap = rt->cap_events ? 2 * rt->cap_events : 256;
        nst_prof_event *n = realloc(rt->events, (size_t)cap * sizeof *n);
        if (!n) {
            if (ev) clReleaseEvent(ev);
            return;
        }
        rt->events = n;
        rt->cap_events = cap;
    }
    rt->events[rt->nevents].name = name;
    rt->events[rt->nevents].ev = ev;
    rt->events[rt->nevents].host_ms = host_ms;
    rt->nevents++;
}

void nst_profile_add(nst_runtime *rt, const char *name, cl_event ev) {
    if (!rt->profile || !ev) {
        if (ev) clReleaseEvent(ev);
        return;
    }
    profile_add(rt, name, ev, 0);
}

void nst_profile_add_host(nst_runtime *rt, const char *name, double ms) {
    if (rt->profile) profile_add(rt, name, NULL, ms);
}

int nst_cpu_kernels(const nst_runtime *rt) {
    if (rt->settings.kernels == NST_KERNELS_CPU) return 1;
    if (rt->settings.kernels == NST_KERNELS_GPU) return 0;
    return !strcmp(rt->info.type, "CPU");
}

size_t nst_wg_1d_cpu(const nst_runtime *rt) {
    size_t wg = nst_wg_1d(rt);
    return wg < 16 ? wg : 16;
}

size_t nst_wg_1d(const nst_runtime *rt) {
    size_t wg = rt->info.max_work_group;
    if (wg >= 256) return 256;
    if (wg >= 64) return 64;
    return wg ? wg : 1;
}
