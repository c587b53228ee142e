/**
 * Secrets must never reach the terminal, a --json line or a file, even when a hub or proxy echoes them back
 * (an error body quoting the request's Authorization header). Known token values are registered when they are
 * resolved; anything shaped like a hub token, a bearer credential or URL credentials is masked as well.
 */
const known = new Set<string>();

// Hub tokens are `hf_` + letters and digits (34 on huggingface.co); 16+ keeps names like `hf_model` intact.
const TOKEN_SHAPE = /hf_[A-Za-z0-9]{16,}/g;
// An echoed header ("authorization: Basic dXNlcjpwYXNz", "Authorization":"Bearer x") and a bare bearer credential.
const AUTH_HEADER = /(authorization["']?\s*[:=]\s*["']?)[^"'\r\n,}]+/gi;
const BEARER = /\bBearer(\s+)[A-Za-z0-9._~+/=-]{8,}/g;
// scheme://user:pass@host or scheme://token@host
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]+@/gi;

export const MASK = "***";

/** Remembers a secret value (the resolved token) so it is masked wherever it appears, whatever its shape. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) known.add(value);
}

/** The text with every registered secret, token-shaped string, bearer/basic credential and URL userinfo masked. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const secret of known) out = out.split(secret).join(MASK);
  return out
    .replace(TOKEN_SHAPE, `hf_${MASK}`)
    .replace(AUTH_HEADER, (_match, name: string) => `${name}${MASK}`)
    .replace(BEARER, (_match, space: string) => `Bearer${space}${MASK}`)
    .replace(URL_CREDENTIALS, (_match, scheme: string) => `${scheme}${MASK}@`);
}

/** A URL fit to show: `http://user:pass@host/x` → `http://***@host/x`. Works on text that is not a valid URL too. */
export function maskUrl(url: string): string {
  return url.replace(URL_CREDENTIALS, (_match, scheme: string) => `${scheme}${MASK}@`);
}
