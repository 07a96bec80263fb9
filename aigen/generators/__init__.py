"""Generators turn a batch of square photos into variations: `base` (what the factory drives), `diffusers_base`
(what every open model shares) with `sd`, the `zoo` (vae, img2img, inpaint, unclip, kandinsky) and `flux` (flux_fill,
flux_kontext, flux_redux, flux2_klein) and their `tiny` random-weight twins, the paid image APIs (`paid_api`: cost,
key, retries) of OpenAI (`openai_images`) and Gemini (`gemini`), and the `controls` that generate nothing."""
