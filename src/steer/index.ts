/**
 * Steering: coders used inside the model. Generation token by token with interventions that
 * add a latent's decoder row at a hookpoint or clamp the latent through its coder
 * (generate.ts), and the hook and logits programs they run (programs.ts). Not here: the model
 * (src/model, whose CausalLM.generate calls this), the CLI (src/cli/steer.ts).
 */
export { checkInterventions, generate, interventionLogits, type Generation, type GenerationModel, type Intervention } from './generate.js';
