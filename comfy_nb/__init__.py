"""comfy_nb: drive ComfyUI from Jupyter."""
