"""Generators turn a batch of square photos into variations: `sd`, `sd_tiny`, and OpenAI's image APIs."""
