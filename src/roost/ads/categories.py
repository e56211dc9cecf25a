"""The brand-safety categories posts are classified into and campaigns block: the Sensitive Topics of
the IAB Content Taxonomy (2.2 onwards, unchanged in 3.x), which are the GARM brand safety floor
categories, plus natural and man-made disasters, which IAB files as news but advertisers routinely
block. The slugs are what roost stores and the API takes."""

from __future__ import annotations

# slug -> the IAB Sensitive Topics node it stands for
CATEGORIES: dict[str, str] = {
    "adult": "Adult & Explicit Sexual Content",
    "arms": "Arms & Ammunition",
    "crime": "Crime & Harmful Acts to Individuals and Society, Human Right Violations",
    "violence": "Death, Injury or Military Conflict",
    "piracy": "Online Piracy",
    "hate": "Hate Speech & Acts of Aggression",
    "obscenity": "Obscenity and Profanity",
    "drugs": "Illegal Drugs/Tobacco/eCigarettes/Vaping/Alcohol",
    "spam": "Spam or Harmful Content",
    "terrorism": "Terrorism",
    "social_issues": "Debated Sensitive Social Issue",
    "disasters": "Disasters (natural and man-made)",
}


def check_categories(names: list[str]) -> list[str]:
    """The names, deduplicated in order; ValueError naming the first unknown one."""
    for name in names:
        if name not in CATEGORIES:
            raise ValueError(f"unknown brand-safety category {name!r}; known: {', '.join(CATEGORIES)}")
    return list(dict.fromkeys(names))
