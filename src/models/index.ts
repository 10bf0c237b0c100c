/** The RFM models: build them (incrementally) and ask how fresh they are. */
export { buildModels, modelFreshness, type BuildOptions, type BuildProgress, type BuildSummary } from './build.ts';
export { renderModel, loadModelSources, MODELS_DIR, type RenderContext } from './template.ts';
