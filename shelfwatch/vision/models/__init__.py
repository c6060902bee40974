"""Model backends through transformers: CLIPSeg (referring), Mask2Former/OneFormer (instances).

torch and transformers are optional (``pip install -e ".[models]"``); nothing here is
imported until a model backend is chosen.
"""
