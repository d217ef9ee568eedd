/** Sharpness diagnostics: Hessian-vector products, top Hessian eigenvalues (Lanczos) and trace (Hutchinson), m-sharpness. */
export * from "./hessian.js";
export * from "./m-sharpness.js";
