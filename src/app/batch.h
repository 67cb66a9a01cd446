/* batch.h: `nst batch JOBS` (src/app/batch.c), part of the command line, not
 * of the library. */
#ifndef NST_BATCH_H
#define NST_BATCH_H

#include "nst.h"

struct option;

/* Runs the transfers of a JSON Lines file, each line an object whose keys
 * are the long options of the main command (longopts, shortopts: the
 * command's own table, so a job is checked exactly as a command line is),
 * each job a child process of this program on one of the selected devices.
 * argv as given to `nst batch` (argv[0] is "batch"). Returns the exit
 * status: 0 when every job succeeded (or had already), 1 when one failed,
 * 2 for bad usage, 130 when interrupted. */
int nst_batch(int argc, char **argv, const char *shortopts, const struct option *longopts,
              const nst_settings *set);

#endif
