/** Sharpness diagnostics: Hessian-vector products, top Hessian eigenvalues (Lanczos) and trace (Hutchinson). */
export * from "./hessian.js";
