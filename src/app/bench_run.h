/* bench_run.h: `nst bench --run N` (src/bench_run.c), part of the command
 * line, not of the library. */
#ifndef NST_BENCH_RUN_H
#define NST_BENCH_RUN_H

/* Times whole `nst` runs, each in a child process: argv as given to `nst
 * bench` (argv[0] is "bench"). Returns the exit status. */
int nst_bench_run(int argc, char **argv);

#endif
