/* main.c: the `nst` command line. The only place that prints to the user and
 * chooses exit codes: 0 success, 1 runtime failure, 2 usage error,
 * 130 interrupted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nst.h"

static int cmd_devices(int argc, char **argv) {
    (void)argc;
    (void)argv;
    nst_device_info *devs = NULL;
    int n = 0;
    nst_msg msg = {{0}};
    nst_status st = nst_devices_list(&devs, &n, &msg);
    if (st != NST_OK) {
        fprintf(stderr, "nst: %s\n", msg.text);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        const nst_device_info *d = &devs[i];
        printf("%s%d: %s\n", d->is_default ? "*" : " ", d->index, d->name);
        printf("    platform      %s\n", d->platform);
        printf("    type          %s\n", d->type);
        printf("    memory        %.0f MiB global, %.0f MiB max allocation, %.0f KiB local\n",
               d->global_mem / 1048576.0, d->max_alloc / 1048576.0, d->local_mem / 1024.0);
        printf("    compute units %u (max work-group %zu)\n", d->compute_units, d->max_work_group);
        printf("    version       %s; %s; driver %s\n", d->version, d->c_version, d->driver);
        printf("    fp16          %s\n", d->fp16 ? "yes" : "no");
    }
    printf("(* = default; choose with --device N, --device NAME or NST_DEVICE)\n");
    free(devs);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "devices")) return cmd_devices(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        printf("nst %s\n", NST_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: nst devices\n");
    return 2;
}
