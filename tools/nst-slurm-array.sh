#!/bin/sh
# nst-slurm-array.sh: `nst batch` as a Slurm job array, one GPU per task.
#
#   sbatch --array=0-7 tools/nst-slurm-array.sh JOBS [nst batch options...]
#
# Every task of the array runs `nst batch JOBS` on its own slice of the jobs:
# nst reads SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_STEP
# and SLURM_ARRAY_TASK_COUNT, so the N tasks run N disjoint slices (the jobs
# sorted largest first and dealt round-robin, so the slices weigh about the
# same) and together every job once. The task sees only the GPU Slurm gave it
# (CUDA_VISIBLE_DEVICES; nst batch's default is every GPU it sees); add
# --devices SEL after JOBS to choose otherwise.
#
# Paths in JOBS are relative to the directory sbatch ran in (the job's
# working directory; --chdir to change it); nst is found on PATH, or set
# NST=/path/to/nst (sbatch --export=ALL,NST=...).
#
# Resubmitting the same command after a failure, a time limit or a
# preemption redoes only what is unfinished: each output is written
# atomically and a job whose output exists is skipped. A task exits 0 only
# when every job of its slice succeeded; `sacct -j JOBID` or the logs
# (nst-batch-JOBID_TASK.log) name the failed jobs.
#
# The directives below are defaults; options given to sbatch override them
# (e.g. --gres=gpu:a100:1, --time=04:00:00, --partition=gpu).
#SBATCH --job-name=nst-batch
#SBATCH --gres=gpu:1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --output=nst-batch-%A_%a.log
set -eu
if [ $# -lt 1 ]; then
    echo "usage: sbatch --array=0-N $0 JOBS [nst batch options...]" >&2
    exit 2
fi
NST=${NST:-nst}
echo "nst-slurm-array: task ${SLURM_ARRAY_TASK_ID:-none} (${SLURM_ARRAY_TASK_COUNT:-1} in the array) on $(hostname), GPU ${CUDA_VISIBLE_DEVICES:-none}"
exec "$NST" batch "$@"
