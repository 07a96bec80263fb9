"""Generators turn a batch of square photos into variations: `base` (what the factory drives), `diffusers_base`
(what every open model shares) with `sd` and the `zoo` (vae, img2img, inpaint, unclip, kandinsky) and their `tiny`
random-weight twins, OpenAI's image APIs (`openai_images`), and the `controls` that generate nothing."""
