/* tiling.h: cutting an image into overlapping tiles (tiled.c) whose
 * windows hold the receptive field of everything they own, so the tiled
 * objective computes every feature exactly. */
#ifndef NST_TILING_H
#define NST_TILING_H

#include "nst_int.h"
#include "weights.h"

/* One tile: a window of the image (every window of a tiling has the same
 * size) and the rectangle of the image it owns. Windows start at multiples of
 * the alignment 2^pools (pools before the deepest tap), so the pooling grids
 * of a tile and of the whole image agree; each window reaches `halo` pixels
 * beyond its owned rectangle (or the image border), at least the receptive
 * field of the deepest tap, so every owned feature is computed exactly. At a
 * layer of stride s a tile owns positions [oy0/s, oy1/s) x [ox0/s, ox1/s)
 * (integer division), so the tiles partition every layer's positions. */
typedef struct nst_tile {
    int y, x;               /* window origin in the image */
    int oy0, oy1, ox0, ox1; /* owned pixels [oy0, oy1) x [ox0, ox1) */
} nst_tile;

typedef struct nst_tiling {
    int h, w;          /* the image */
    int th, tw;        /* every window */
    int halo, align;
    int ny, nx;        /* tiles down and across */
    nst_tile *tiles;   /* ny * nx, row-major, malloc'ed */
} nst_tiling;

/* Receptive field of w's network (nst_weights_net) up to layer depth-1, from
 * its table (nst_net_receptive): *halo (a multiple of *align) and *align =
 * 2^pools. 0, or -1 when depth is not in 1..the network's layers. */
int nst_tiled_geometry(const nst_weights *w, int depth, int *halo, int *align);
/* Tiles an h x w image with windows of at most `tile` pixels a side. A side
 * no longer than `tile` is not cut. NST_ERR_INVALID_ARG when `tile` is below
 * 2*halo + align (the smallest window that makes progress), which the message
 * states. out->tiles is owned by out: nst_tiling_free. */
nst_status nst_tiling_make(int h, int w, int tile, int halo, int align, nst_tiling *out,
                           nst_msg *msg);
void nst_tiling_free(nst_tiling *t);
/* The smallest tile limit that tiles every image: 2*halo + align, plus up to
 * align - 1 that tile_1d gives up to keep the pooling grid. */
int nst_tiling_min_tile(int halo, int align);

#endif
