"""Labels in and out: COCO files for CVAT and Label Studio, and evaluation against them."""
