/** Normalisers shared by the published baselines: the largest node of the openb cluster. */
export const MAX_SPEC_CPU = 128_000;
export const MAX_SPEC_GPU = 8_000;

/** kube-scheduler's score range. */
export const MAX_NODE_SCORE = 100;
