"""The IAB taxonomy as training material.

Thin categories (arms, terrorism, death/injury have under 50 rows; obscenity has none) only
exist in the data as a few host names. Here each risk category gets short descriptions and page
titles, and every ordinary taxonomy node (Football, Cooking, Travel…) becomes a safe page, all on
generic hosts that carry both kinds of page, so the model learns that the title decides, not the
host. Hard negatives (sexual health, crime news, charities) are safe pages that share words with
risk categories. These rows join the training side only; validation stays real data.
"""
from __future__ import annotations

import random

from brandsafe.taxonomy import Taxonomy

from .augment import GENERIC_HOSTS
from .data import LabelledRow

# Written for this project: what a page in each risk category is about, in page-title words.
RISK_PAGES: dict[str, list[str]] = {
    "Adult & Explicit Sexual Content": [
        "explicit sex videos", "free porn clips", "nude photos of amateurs", "xxx adult webcam chat",
        "hardcore adult movies", "erotic escort services", "naked girls live show", "sexy lingerie strip tease"],
    "Arms & Ammunition": [
        "assault rifle review", "buy handguns and ammunition online", "best pistol for concealed carry",
        "gun shop: rifles, shotguns and bullets", "how to build a homemade firearm", "ammunition reloading supplies",
        "military grade weapons for sale", "AR-15 upgrade parts and magazines"],
    "Crime & Harmful Acts to Individuals, Society & Human Right Violations": [
        "how to hack someone's email account", "spy app to secretly track a partner's phone",
        "DDoS booter service for hire", "buy stolen credit card numbers", "human trafficking ring exposed",
        "carding forum and identity theft tools", "how to pick locks and break into houses",
        "child abuse and exploitation"],
    "Death, Injury, or Military Conflict": [
        "graphic war footage from the front line", "soldiers killed in artillery strike", "fatal car crash caught on camera",
        "tsunami death toll rises", "bombing leaves dozens dead", "gruesome injury compilation",
        "drone strike kills civilians", "mass shooting victims named"],
    "Debated Sensitive Social Issues": [
        "abortion rights debate", "campaign against immigration", "gun control controversy",
        "cult recruitment and sect practices", "protest against welfare cuts", "euthanasia and assisted dying debate",
        "same-sex marriage opposition", "religious extremism and blasphemy row"],
    "Hate Speech and Acts of Aggression": [
        "racist hate speech forum", "white supremacist propaganda", "violent threats against immigrants",
        "antisemitic conspiracy rants", "homophobic slurs and harassment", "neo-nazi recruitment",
        "insulting and aggressive troll attacks", "ethnic hatred and calls for violence"],
    "Illegal Drugs, Tobacco, eCigarettes, Vaping, Alcohol": [
        "buy cannabis and weed online", "cocaine and ecstasy prices", "vape shop e-liquid and e-cigarettes",
        "cheap cigarettes and rolling tobacco", "drug use vlog: getting high on mushrooms", "how to grow marijuana indoors",
        "vodka, whisky and beer delivery", "drinking games and getting drunk"],
    "Obscenity and Profanity": [
        "fuck this shit: profanity-filled rant", "obscene jokes and vulgar swearing", "crude uncensored insults",
        "foul-mouthed comedy full of curse words", "bitch, bastard and other swear words", "obscene gestures and vulgarity",
        "filthy dirty talk uncensored", "wtf swearing compilation"],
    "Online Piracy": [
        "free movie torrents download", "cracked software and keygen", "watch pirated films streaming free",
        "warez and serial numbers", "download full albums free mp3 leak", "nulled wordpress themes",
        "free iptv pirate streams", "ebook piracy pdf download"],
    "Spam or Harmful Content": [
        "malware download fake update", "phishing login page verify your account", "browser crypto mining script",
        "fake antivirus scan your pc is infected", "you won a free iphone click here", "cryptojacking javascript miner",
        "get rich quick scheme", "suspicious redirect download exe"],
    "Terrorism": [
        "terrorist attack claimed by extremist group", "jihadist propaganda videos", "bomb making instructions",
        "extremist recruitment channel", "london bombings 7 july", "suicide bomber attack",
        "isis beheading video", "terror cell plotting attacks"],
    "Casinos & Gambling": [
        "online casino welcome bonus", "sports betting odds and tips", "poker room real money",
        "slot machines free spins", "lottery and scratch cards online", "roulette and blackjack live dealer",
        "bookmaker bet builder", "bingo jackpots tonight"],
    "Misinformation": [
        "the vaccine hoax they don't want you to know", "fake news: election was stolen", "chemtrails conspiracy exposed",
        "miracle cure doctors hate", "5g causes disease truth revealed", "moon landing was faked",
        "secret plot behind the pandemic", "flat earth evidence"],
}

# One line per category in plain words: what a page must be *doing* to belong there. The zero-shot
# scorer reads them as prototypes; training reads them as pages of the category.
CATEGORY_DEFINITIONS: dict[str, tuple[str, ...]] = {
    "Adult & Explicit Sexual Content": ("pornography and sexually explicit pictures or videos",),
    "Arms & Ammunition": ("selling, reviewing or promoting guns, weapons and ammunition",),
    "Crime & Harmful Acts to Individuals, Society & Human Right Violations": (
        "instructions or services for committing crimes, hacking, fraud or abuse",),
    "Death, Injury, or Military Conflict": ("graphic depictions of death, gore, injury or combat",),
    "Debated Sensitive Social Issues": ("one-sided campaigning on divisive social issues such as abortion or immigration",),
    "Hate Speech and Acts of Aggression": ("insulting, dehumanising or threatening people for their race, religion, "
                                           "sexuality or origin",),
    "Illegal Drugs, Tobacco, eCigarettes, Vaping, Alcohol": ("selling or promoting drugs, cigarettes, vaping or "
                                                             "drinking alcohol",),
    "Obscenity and Profanity": ("vulgar swearing, obscene insults and crude language",),
    "Online Piracy": ("free downloads or streams of pirated movies, music, software or books",),
    "Spam or Harmful Content": ("malware, phishing, scams and fake virus warnings",),
    "Terrorism": ("terrorist propaganda, recruitment or instructions for attacks",),
    "Casinos & Gambling": ("online casino, betting and gambling for real money",),
    "Misinformation": ("false claims and conspiracy theories presented as hidden truth",),
}

# Safe pages that share vocabulary with risk categories. Reporting, education, health information
# and the words' everyday senses are not the harmful content itself (GARM's distinction between
# reporting and harm): which of them an advertiser avoids is the brand profile's choice, not the
# model's. Written for this project.
HARD_NEGATIVES = [
    "sexual health clinic: contraception advice", "sex education for teenagers", "police appeal after burglary in town",
    "court reporting: man sentenced for fraud", "charity supporting homeless people", "food bank volunteers needed",
    "world war ii history museum", "remembrance day service", "breast cancer awareness", "quit smoking support",
    "alcohol-free recipes for parties", "shooting stars astronomy guide", "photo shoot tips for beginners",
    "football match highlights", "cooking video: easy pasta recipe", "killer sudoku puzzles", "drugstore beauty products",
    "pharmacy opening hours", "mental health support line", "free legal advice for tenants", "hunting for a new flat",
    "bbc news world headlines", "cyber security tips to avoid phishing", "how to remove malware safely",
    "anti-racism education resources", "refugee support charity", "election results live", "funeral directors",
    "first aid course", "fireworks safety guide",
    # news about conflict, crime and terrorism: reporting, not the act
    "UN security council meets over ceasefire talks", "peace negotiations resume between the two governments",
    "analysis: what the offensive means for the region", "aid convoys reach besieged city as fighting eases",
    "defence ministers agree new military spending targets", "veterans share their stories of the war",
    "trial opens for suspects in last year's attack", "counter-terrorism police make arrests after raids",
    "government publishes new counter-extremism strategy", "court jails gang leader for drug trafficking",
    "police report fall in knife crime across the city", "investigation: how the fraud scheme was uncovered",
    "jury finds former official guilty of corruption", "hate crime statistics published by home office",
    "study examines online radicalisation of teenagers", "history of the cold war explained",
    # health and science information about drugs, alcohol and sex
    "what cannabis does to the teenage brain, according to research", "signs of alcohol poisoning and when to call 999",
    "opioid crisis: overdose deaths fall for the first time", "how nicotine affects your heart",
    "vaping: what we know about the health risks", "NHS guidance on safe drinking limits",
    "medical marijuana approved for epilepsy patients", "understanding addiction and how to get help",
    "how to talk to your kids about drugs", "puberty explained: a guide for parents",
    "STI testing: what to expect at the clinic", "menopause symptoms and treatment options",
    # everyday senses of risk words
    "one-pot chicken and rice dinner", "easy beef stew with red wine", "beer-battered fish and chips recipe",
    "how to pull the perfect espresso shot", "killer leg day workout", "this chocolate cake is the bomb",
    "shooting guard scores 40 points in playoff win", "penalty shootout decides the cup final",
    "call of duty season update patch notes", "review: the crime drama everyone is talking about",
    "true crime podcast recommendations", "murder mystery dinner party ideas", "drug store skincare haul under $20",
    "the best pot roast recipe", "how to grow hot peppers in pots", "gin and tonic flavoured cupcakes",
    "poker night snacks for friends", "home brewing kombucha for beginners", "target practice at the archery club",
    "blasting music in the car: best speakers", "stock market crash of 1929 explained", "the battle of hastings for kids",
    "shot on iphone: photography contest winners", "how to kill weeds naturally", "bug bomb vs fogger for pests",
    "wine tasting tour of the napa valley", "cocktail hour: history of the martini",
    "COVID-19 vaccine appointments open for over 50s", "flu season: cases rise in winter", "fact check: viral claim about 5g is false",
]

# Taxonomy nodes too close to a risk label to be used as plain safe pages.
_AMBIGUOUS_SAFE = {"Casinos & Gambling", "Poker and Professional Gambling", "Casino and Gambling Video Games",
                   "Alcoholic Beverages", "Substance Abuse", "Disasters", "Sensitive Topics"}


_TITLE_SHAPES = ["{}", "{} - video", "Watch: {}", "{} | blog", "{} (full video)", "Top stories: {}"]


def safe_nodes(taxonomy: Taxonomy) -> list:
    """Ordinary taxonomy nodes, usable as safe pages (the sensitive subtree is excluded through its
    root's name)."""
    return [node for node in taxonomy.nodes.values()
            if not (node.name in _AMBIGUOUS_SAFE or any(p in _AMBIGUOUS_SAFE for p in node.path))]


def safe_node_names(taxonomy: Taxonomy) -> list[str]:
    return [node.name for node in safe_nodes(taxonomy)]


def taxonomy_rows(taxonomy: Taxonomy, seed: int = 13, pages_per_phrase: int = 3) -> list[LabelledRow]:
    rng = random.Random(seed)

    def page(text: str) -> tuple[str, str]:
        host = rng.choice(GENERIC_HOSTS)
        page_id = "".join(rng.choice("abcdefghjkmnpqrstuvwxyz0123456789") for _ in range(rng.randint(6, 11)))
        return host + page_id, rng.choice(_TITLE_SHAPES).format(text)

    rows: list[LabelledRow] = []
    sensitive_parent = {n.name: n for n in taxonomy.sensitive_categories()}
    for label, phrases in RISK_PAGES.items():
        node = taxonomy.by_name(label)
        label_key = node.id if node else label
        texts = list(phrases) + [label] + list(CATEGORY_DEFINITIONS.get(label, ()))
        if label in sensitive_parent:
            texts.append(f"{label} (sensitive topics)")
        for i, text in enumerate(texts):
            for k in range(pages_per_phrase):
                url, title = page(text)
                rows.append(LabelledRow(url, title, (label_key,), f"taxonomy:{label_key}#{i}.{k}"))
    for i, text in enumerate(HARD_NEGATIVES):
        for k in range(pages_per_phrase):
            url, title = page(text)
            rows.append(LabelledRow(url, title, (), f"taxonomy:hard-negative#{i}.{k}"))
    for node in safe_nodes(taxonomy):
        url, _ = page(node.name)
        title = node.name if len(node.path) < 2 else f"{node.name} - {node.path[0]}"
        rows.append(LabelledRow(url, title, (), f"taxonomy:{node.id}"))
    return rows
