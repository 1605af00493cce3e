/**
 * Whether the Hugging Face Hub can be reached, asked once per process and endpoint with a short
 * timeout: when it cannot (or HF_HUB_OFFLINE is set), models, tokenizers and datasets named by
 * Hub id are loaded from the local cache only, so an offline run fails in a second with one
 * line (or uses what is cached) instead of retrying for half a minute.
 */

const probes = new Map<string, Promise<boolean>>();

/** The Hub's URL: HF_ENDPOINT, else huggingface.co. */
export function hubEndpoint(): string {
  return (process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
}

/** HF_HUB_OFFLINE says not to use the network. */
export function offlineByEnv(): boolean {
  return ['1', 'true', 'yes', 'on'].includes((process.env.HF_HUB_OFFLINE ?? '').toLowerCase());
}

/** Whether to load Hub names from the cache only: offline by the environment, or no answer from the Hub within `timeoutMs`. */
export function hubOffline(timeoutMs = 3000): Promise<boolean> {
  if (offlineByEnv()) return Promise.resolve(true);
  const endpoint = hubEndpoint();
  let probe = probes.get(endpoint);
  if (!probe) {
    probe = fetch(endpoint, { method: 'HEAD', redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) }).then(
      () => false, // any answer, even an error status, means the Hub is there
      () => true,
    );
    probes.set(endpoint, probe);
  }
  return probe;
}
