import { getJson } from "./api.js";

// Every voice the owner can speak with (presets and custom), from the public voice search.
export async function allVoices(params = "") {
  const voices = []; let token = null;
  do {
    const page = await getJson(`/v2/audio/voices?page_size=100${params}${token ? `&page_token=${encodeURIComponent(token)}` : ""}`);
    voices.push(...page.data); token = page.next_page_token;
  } while (token && voices.length < 2000);
  return voices;
}
