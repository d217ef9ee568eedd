/** Sharpness diagnostics: Hessian-vector products, top Hessian eigenvalues (Lanczos) and trace (Hutchinson), m-sharpness. */
export * from "./hessian.js";
/** The sharpness-based generalisation measures (worst-case sharpness, PAC-Bayes flatness) and parameter corruption. */
export * from "./measures.js";
export * from "./corruption.js";
export type { SampleSummary } from "./perturb.js";
export * from "../select.js";
export * from "./m-sharpness.js";
