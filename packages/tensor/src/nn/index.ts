export { Module, ModuleList, Parameter, StateDictError, copyInto, type LoadReport } from "./module.js";
export { Linear, LayerNorm, Embedding, Dropout, type LayerOptions } from "./layers.js";
