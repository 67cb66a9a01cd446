/* temporal.cl: the temporal term of video style transfer (Ruder, Dosovitskiy
 * and Brox 2016): the squared difference between the image and the previous
 * output warped to this frame, weighted per pixel by the consistency mask.
 * Partial sums per work-group by wg_sum (common.cl: a tree in local
 * memory, no float atomics), summed by loss.cl's loss_reduce_final. */

/* Over n = planes * hw entries: d = x - target, c = mask[i % hw];
 * partial sums of c * d^2 and, when has_grad, dx += gscale * c * d
 * (gscale = 2 * weight / n). */
__kernel void temporal_loss(const int n, const int hw, __global const float *x,
                            __global const float *target, __global const float *mask,
                            const int has_grad, const float gscale, __global float *dx,
                            __global float *partial, __local float *scratch) {
    float acc = 0.0f;
    for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
        const float c = mask[i % hw];
        const float d = x[i] - target[i];
        acc += c * d * d;
        if (has_grad) dx[i] += gscale * c * d;
    }
    float s = wg_sum(scratch, acc);
    if (get_local_id(0) == 0) partial[get_group_id(0)] = s;
}
