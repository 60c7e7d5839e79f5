// SVG writer: placeholder
