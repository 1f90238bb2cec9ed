"""The sample shop's vocabulary: per-category catalogue words and review fragments.

Kept apart from tools/data/sample.py, which turns them into data: this file is prose.
"""

from __future__ import annotations

# Per category: brands | adjectives | "Product=description lead" | features | benefits
# | review aspects | (median price, log-normal sigma). Texts carry the category's
# semantics so that embedded item texts cluster by category.
CATEGORIES: dict[str, tuple[str, str, str, str, str, str, tuple[float, float]]] = {
    "Electronics": (
        "Auralis Voxen Kestrel Lumio Sonique Veltra",
        "Wireless|Noise-Cancelling|Smart|Portable|Ultra HD|Compact",
        "Headphones=Over-ear headphones|Earbuds=True wireless earbuds|Bluetooth Speaker=Portable bluetooth speaker|Smart TV=Ultra-slim smart television|Soundbar=Home cinema soundbar|Smartwatch=Smartwatch|Action Camera=Waterproof action camera|Streaming Stick=Media streaming stick",
        "with 30-hour battery life and fast USB-C charging|with active noise cancellation and rich bass|with Wi-Fi, Bluetooth 5.3 and voice assistant support|with a 4K HDR display and Dolby Atmos sound|with app control and over-the-air firmware updates",
        "Built for people who love the latest gadgets.|Pairs instantly with your phone, tablet and laptop.|Premium audio and video electronics with a two-year warranty.|Immersive sound and a sharp picture for home entertainment.",
        "sound quality|battery life|picture quality", (150.0, 0.7)),
    "Computers & Accessories": (
        "Nexora Bitwise Corelink Quantix Pixelforge Ardent",
        "Mechanical|Ergonomic|High-Performance|Gaming|Ultralight|Wireless",
        "Keyboard=Backlit keyboard|Mouse=Precision mouse|Laptop=Thin and light laptop|Monitor=27-inch IPS monitor|SSD=NVMe solid state drive|Graphics Card=Graphics card|USB-C Hub=Multiport USB-C docking hub|Webcam=Full HD webcam",
        "with a fast multi-core processor and 16 GB of RAM|with customizable RGB lighting and programmable keys|with 1 TB of storage and blazing read speeds|with 144 Hz refresh rate and low input lag|with plug-and-play support for Windows, macOS and Linux",
        "Ideal for coding, gaming and content creation.|Upgrade your desk setup and PC performance.|Engineered for power users and PC builders.|Boost productivity when working from home.",
        "performance|build quality|setup", (90.0, 0.8)),
    "Home & Kitchen": (
        "Hearthly Casara Oakline Culina Nestwell Brightbay",
        "Non-Stick|Stainless Steel|Cozy|Modern|Ceramic|Programmable",
        "Cookware Set=Cookware set|Coffee Maker=Drip coffee maker|Chef's Knife=Chef's knife|Throw Blanket=Soft throw blanket|Table Lamp=Bedside table lamp|Air Fryer=Air fryer|Dinnerware Set=Dinnerware set for the dining table|Storage Baskets=Woven storage baskets",
        "for everyday cooking and baking in your kitchen|that fits any living room or bedroom decor|with dishwasher-safe parts and easy cleanup|that brews, fries and simmers at the touch of a button|made from durable natural materials",
        "Makes your house feel like home.|A kitchen essential for family meals.|Adds warmth and style to your interior.|Perfect for hosting dinner guests.",
        "build quality|design|ease of cleaning", (45.0, 0.6)),
    "Garden & Outdoor": (
        "Greenhaven Terrafirm Bloomwell Fernwood Patiora Mossley",
        "Weatherproof|Solar|Cordless|Raised|Heavy-Duty|Folding",
        "Garden Hose=Expandable garden hose|Lawn Mower=Lawn mower|Planter Box=Raised planter box|Patio Chair=Patio lounge chair|String Lights=Outdoor string lights|Pruning Shears=Bypass pruning shears|Compost Bin=Compost bin|Barbecue Grill=Charcoal barbecue grill",
        "for your backyard, patio and vegetable garden|built to withstand rain, sun and frost|that makes lawn care and planting easier|for growing herbs, flowers and tomatoes|for summer evenings outdoors on the terrace",
        "Turn your garden into an outdoor living space.|Loved by keen gardeners and DIY home improvers.|Enjoy healthier plants and a greener lawn.|Outdoor furniture and tools built to last.",
        "sturdiness|weather resistance|assembly", (55.0, 0.7)),
    "Clothing": (
        "Velour Nordlyn Atelia Marlowe Rivet Solenne",
        "Slim-Fit|Oversized|Linen|Cropped|Organic Cotton|Vintage-Wash",
        "Denim Jacket=Denim jacket|Summer Dress=Flowy summer dress|T-Shirt=Everyday t-shirt|Wool Sweater=Knit wool sweater|Chinos=Tailored chinos|Hoodie=Relaxed hoodie|Blazer=Unstructured blazer|Midi Skirt=Pleated midi skirt",
        "in this season's trending colours|with a flattering fit and soft breathable fabric|from the new spring/summer fashion collection|that pairs with sneakers or heels|in sizes XS to XXL",
        "Refresh your wardrobe with a runway-inspired look.|A stylish outfit staple for every occasion.|Effortless street-style fashion.|Mix and match for a new look every day.",
        "fit|fabric|colour", (38.0, 0.5)),
    "Shoes & Accessories": (
        "Strider Lunette Carvelle Ombra Kittridge Palomo",
        "Leather|Minimalist|Chunky|Suede|Statement|Classic",
        "Sneakers=Low-top sneakers|Ankle Boots=Ankle boots|Sandals=Strappy sandals|Handbag=Structured handbag|Sunglasses=Polarized sunglasses|Belt=Reversible belt|Crossbody Bag=Crossbody bag|Loafers=Penny loafers",
        "with cushioned soles for all-day comfort|in premium leather with gold-tone hardware|that completes any outfit|with a designer look at an accessible price|in neutral tones that match your wardrobe",
        "The finishing touch for a fashionable look.|Walk in style from office to weekend.|An accessory fashion lovers reach for daily.|Trend-led footwear and accessories.",
        "comfort|stitching|style", (60.0, 0.5)),
    "Books": (
        "Larkspur Quillon Harborlight Inkwell Penmark Foxglove",
        "Mystery|Historical|Science Fiction|Literary|Fantasy|Biographical",
        "Novel=Novel|Paperback=Paperback novel|Hardcover Edition=Hardcover book|Short Story Collection=Collection of short stories|Trilogy Box Set=Box set of a beloved trilogy|Memoir=Memoir|Audiobook=Unabridged audiobook|Essay Collection=Book of essays",
        "by an award-winning author with richly drawn characters|with a gripping plot and unexpected twists|that book clubs and avid readers adore|exploring love, loss and memory across generations|with beautiful prose and a haunting setting",
        "A page-turner you will not want to put down.|Perfect for a quiet evening of reading.|A bestseller praised by literary critics.|Add this story to your bookshelf.",
        "writing|plot|pacing", (14.0, 0.35)),
    "Beauty & Personal Care": (
        "Dewlyn Lumaire Purelle Velvetine Aquara Botanee",
        "Hydrating|Fragrance-Free|Vitamin C|Organic|Travel-Size|Gentle",
        "Face Serum=Face serum|Moisturizer=Daily moisturizer|Shampoo=Shampoo|Lip Balm=Lip balm|Sunscreen SPF 50=Mineral sunscreen|Body Lotion=Body lotion|Makeup Brush Set=Makeup brush set|Face Mask=Sheet face mask",
        "for dry and sensitive skin|with hyaluronic acid and aloe vera|dermatologist tested and cruelty-free|for glossy, healthy-looking hair|that absorbs quickly without residue",
        "A simple step in your skincare routine.|Self-care and grooming made easy.|Leaves skin soft, glowing and refreshed.|Beauty essentials for every day.",
        "scent|texture|finish", (16.0, 0.5)),
    "Toys & Games": (
        "Tumblebee Brickly Jollyfox Puzzlewick Wonderkin Gigglet",
        "Educational|Wooden|Remote-Control|Collectible|Family|Interactive",
        "Building Blocks=Building block set|Board Game=Board game|Jigsaw Puzzle=1000-piece jigsaw puzzle|Plush Toy=Plush teddy bear|Race Car=Toy race car|Doll House=Doll house|Card Game=Party card game|Science Kit=STEM science kit for kids",
        "for kids aged 3 and up|for family game night|that sparks creativity and imaginative play|that makes a perfect birthday or holiday gift|with colourful pieces and easy rules",
        "Hours of fun for children and parents.|A favourite gift for birthdays and Christmas.|Learning through play.|Bring the whole family around the table.",
        "quality|fun factor|packaging", (25.0, 0.6)),
    "Household Essentials": (
        "Tidyco Brightwash Everclean Staplewise Freshbay Handyhome",
        "Value Pack|Bulk|Multi-Surface|Eco|Family-Size|Refill",
        "Paper Towels=Paper towels|Laundry Detergent=Laundry detergent|Dish Soap=Dishwashing liquid|Trash Bags=Trash bags|All-Purpose Cleaner=All-purpose cleaning spray|Toilet Paper=Toilet paper rolls|Sponges=Scrub sponges|Batteries=AA alkaline batteries",
        "in an economical bulk pack|for everyday cleaning around the house|that stocks up your pantry and cupboard|at a low price per unit|with a fresh scent, tough on grease",
        "Save money on household basics.|Everyday essentials delivered to your door.|Stock up and save with this multipack.|Cheap and cheerful cleaning supplies.",
        "value|price|scent", (9.0, 0.45)),
}
CATEGORY_NAMES = tuple(CATEGORIES)


# Review fragments indexed by sentiment (0 negative, 1 neutral, 2 positive).
OPENERS = (
    ("Disappointed.", "Not what I expected.", "Really not happy with this one.", "Sadly this did not work out."),
    ("It's okay.", "Decent, nothing special.", "Mixed feelings about this.", "Average overall."),
    ("Absolutely love it!", "Great purchase.", "Really happy with this.", "Exceeded my expectations."),
)
ASPECTS = (  # (before, after) the category's aspect noun
    (("The ", " fell apart quickly."), ("The ", " was poor for the price."), ("I expected more from the ", "."), ("The ", " is a real letdown.")),
    (("The ", " is fine but not amazing."), ("The ", " is acceptable."), ("Nothing special about the ", "."), ("The ", " could be better.")),
    (("The ", " is excellent."), ("I'm impressed by the ", "."), ("The ", " is even better than described."), ("Loved the ", ".")),
)
CLOSERS = (
    ("Returned it.", "Would not recommend.", "Save your money.", "Customer service was no help either."),
    ("Might keep it.", "Fair for the price.", "Could go either way.", "Not sure yet."),
    ("Highly recommend!", "Would buy again.", "Already ordered a second one.", "Worth every penny."),
)
