"""Hand-written evaluation set: realistic web pages (URL + title) for brand-safety checks.

Every row was written and labelled by hand by one reviewer, without running any model on it,
to test whether the classifier reads a page the way a person does.  The point of the set is
GARM's distinction between the harmful content itself ("harmful", labelled) and pages that
report on, explain or debate a sensitive topic ("reporting", brand-safe, labels []), plus
ordinary pages that merely share words with the risk categories ("safe", labels []).

Each entry is (labels, topic, host, path, title) inside its group's table:
  * path is a template: "{slug}" is the headline turned into a CMS-style slug,
    "{short}" the same with stop words dropped and cut to 8 words, None means "/{slug}/";
    a path without either is an opaque or hand-written path that is used as is.
  * title None means the bidder sent no title, so the path has to carry the meaning.

Run from the repository root:  python3 training/evalsets/pages.py
It writes realistic-pages.jsonl next to this file (sorted by URL, so the output is stable).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

ADULT = "Adult & Explicit Sexual Content"
ARMS = "Arms & Ammunition"
CRIME = "Crime & Harmful Acts to Individuals, Society & Human Right Violations"
DEATH = "Death, Injury, or Military Conflict"
DEBATED = "Debated Sensitive Social Issues"
HATE = "Hate Speech and Acts of Aggression"
DRUGS = "Illegal Drugs, Tobacco, eCigarettes, Vaping, Alcohol"
PROFANITY = "Obscenity and Profanity"
PIRACY = "Online Piracy"
SPAM = "Spam or Harmful Content"
TERROR = "Terrorism"
GAMBLING = "Casinos & Gambling"
MISINFO = "Misinformation"

LABELS = (ADULT, ARMS, CRIME, DEATH, DEBATED, HATE, DRUGS, PROFANITY, PIRACY, SPAM, TERROR,
          GAMBLING, MISINFO)

SOURCE = "realistic-pages"
OUTPUT = Path(__file__).with_name("realistic-pages.jsonl")

# The content itself: selling, showing, promoting or instructing.  (labels, topic, host, path, title)
HARMFUL = [
    # --- Adult & Explicit Sexual Content
    ([ADULT], "porn", "www.hotclipsxtube.com", "video/84721933/{slug}",
     "Stepsister gets caught in the shower and can't stop - HotClipsXTube"),
    ([ADULT], "porn", "www.pornvidhub.net", "videos/amateur-couple-homemade-sex-tape-1080p", None),
    ([ADULT], "webcam", "livecamgirlz.club", "room/nataliee_x",
     "Nataliee_x's Live Cam Show - Free Chat Now | LiveCamGirlz"),
    ([ADULT], "escort", "escortdirectory-london.xyz", "profile/48213",
     "Sophia, 24 - Independent Escort Kensington | Incalls & Outcalls"),
    ([ADULT], "erotica", "www.steamystoriesarchive.com", "s/44120",
     "My Neighbour's Wife - Chapter 3 (Erotic Fiction)"),
    ([ADULT], "porn", "www.reddit.com", "r/gonewild/comments/1b8x2kq/feeling_brave_tonight_f/",
     "feeling brave tonight [f] : r/gonewild"),
    ([ADULT, PIRACY], "leaked-porn", "onlyfansleaked.top", "models/bella-rose-x/p/9913",
     "bella_rose_x Leaked OnlyFans Pack (312 photos + 40 videos) MEGA"),
    ([ADULT], "hentai", "hentaiheavenly.to", "watch/{short}",
     "Tentacle Academy Episode 4 - Uncensored Hentai Stream"),
    ([ADULT], "sex-toys", "www.pleasurechest-direct.com", "index.php?route=product/product&product_id=1182",
     "Rechargeable Rabbit Vibrator - 10 Speeds, Waterproof, Whisper Quiet"),
    ([ADULT], "porn", "www.xxxmilfzone.net", "galleries/{slug}",
     "Hot mature neighbour strips by the pool - 64 pics"),

    # --- Arms & Ammunition
    ([ARMS], "gun-shop", "www.ridgelinearmory-store.com", "products/{slug}",
     "AR-15 Complete Lower Receiver - Mil-Spec, Ships Fast"),
    ([ARMS], "ammo-shop", "ammodepot-bulk.net", "9mm-luger-115gr-fmj-1000-rounds", None),
    ([ARMS], "ghost-gun", "eighty-percent-jigs.shop", "products/{short}",
     "Unfinished 80% Pistol Frame Kit with Jig and Drill Bits — No FFL Required"),
    ([ARMS], "reloading-forum", "www.rimfireandreloading.net", "threads/{slug}.558213/",
     "Best powder for 6.5 Creedmoor load development?"),
    ([ARMS, CRIME], "auto-sear", "www.youtube.com", "watch?v=Qk3vT9xLm2A",
     "Installing a Glock switch - FULL AUTO test fire 🔥"),
    ([ARMS], "gun-classifieds", "www.gunlisting-classifieds.com", "posts/8830142/{short}",
     "Glock 19 Gen 5 - private sale, cash only, no paperwork"),
    ([ARMS], "suppressor", "www.tacticaldealz.net", "suppressors/solvent-trap-kit-1-2x28-titanium", None),
    ([ARMS], "gun-review", "www.riflesandoptics-hq.com", "blog/{short}/",
     "The 7 Best AR-10 Rifles Under $1,500 (Range Tested)"),
    ([ARMS], "3d-printed-gun", "www.printyourarms.top", "files/fgc-9-mk2-complete-package",
     "FGC-9 MK2 – complete print files + build guide (zip)"),
    ([ARMS], "ammo-shop", "www.bulkshotshells.com", "p/7f2e91",
     "12 Gauge 00 Buckshot, 9 Pellet — 250 Round Case"),

    # --- Crime & harmful acts
    ([CRIME], "carding", "cardingmafia-forum.cc", "threads/{slug}.48211/",
     "Fresh CC dumps with PIN - 101/201 - valid rate 90% - escrow accepted"),
    ([CRIME], "shoplifting", "lifterguide.blogspot.com", "2023/11/{slug}.html",
     "How to beat security tags at department stores (tested 2023)"),
    ([CRIME], "doxxing", "pastedox.org", "upload/4kQz81",
     "Dox: full name, address, parents' phone numbers, school - updated 3 days ago"),
    ([CRIME], "fake-id", "idgodz-novelty.com", "shop/item/77",
     "Scannable Novelty ID - Any State, Passes UV & Barcode Scan"),
    ([CRIME], "identity-theft", "fullzmarket.top", "vendors/88213",
     "Buy SSN + DOB fullz, US, bulk discount, fresh every week"),
    ([CRIME], "car-theft", "www.youtube.com", "watch?v=Zr8pW1cXyT0",
     "Keyless relay attack - open and drive any push-start car in 30 seconds"),
    ([CRIME], "stalkerware", "spyphone-pro.app", "landing/whatsapp-monitor?aff=7781&utm_campaign=gf",
     "Read Her WhatsApp Messages Without Her Knowing – 100% Invisible"),
    ([CRIME], "money-mule", "quickcash-jobs.online", "apply?ref=ig",
     "Get paid £400 a week to let us use your bank account – no questions asked"),

    # --- Death, injury, military conflict (gore / shock)
    ([DEATH], "gore", "www.goreshockvault.com", "videos/31190",
     "Man crushed by forklift - uncensored CCTV"),
    ([DEATH, CRIME], "gore", "www.deathclipsarchive.net", "watch/55812",
     "Cartel execution video 2024 (graphic, full)"),
    ([DEATH], "combat-gore", "www.frontlinecombatfootage.org", "clips/{short}",
     "Drone drops grenade on soldiers in trench - full uncut"),
    ([DEATH], "gore", "www.shockinggore.top", "accident/motorcycle-crash-head-injury-real-footage", None),
    ([DEATH], "gore", "www.kaotic-clips.xyz", "video/7a1c3e",
     "Jumper caught on camera from 20th floor (NSFL)"),
    ([DEATH], "combat-gore", "www.reddit.com",
     "r/CombatFootage/comments/1bd8k2x/russian_soldiers_last_moments_after_fpv_hit_nsfl/",
     "Russian soldier's last moments after FPV hit [NSFL] : r/CombatFootage"),
    ([DEATH], "gore", "www.realautopsyfiles.com", "gallery/412",
     "Real autopsy photos of car crash victims - full gallery"),
    ([DEATH], "gore", "www.videos-choc-insolites.fr", "{slug}-v4412.html",
     "Vidéo choc : il se fait happer par un train (âmes sensibles s'abstenir)"),
    ([DEATH], "gore", "www.youtube.com", "watch?v=b7HkQe2LwPs",
     "Worst workplace accidents caught on camera #7 (not for the faint hearted)"),

    # --- Debated sensitive social issues (inflammatory, one-sided)
    ([DEBATED], "abortion-inflammatory", "www.lifewarriorsaction.org", "blog/?p=4412",
     "Abortionists are murderers and should be treated like it"),
    ([DEBATED], "immigration-inflammatory", "www.patriotpulse-news.com", "news/?p=88123",
     "Send them all back: why mass deportation is the only answer left"),
    ([DEBATED], "gun-rights-inflammatory", "freedomfirstdaily.substack.com", "p/{short}",
     "Gun grabbers want you defenceless. Here's how we fight back."),
    ([DEBATED], "gender-inflammatory", "www.youtube.com", "watch?v=Lm4tRk9xBv2",
     "Feminism has destroyed western men (and women know it)"),
    ([DEBATED], "abortion-inflammatory", "medium.com", "@truthwarrior77/p/3c9d0e1f2a7b",
     "Pro-lifers are religious fanatics who want women dead"),
    ([DEBATED, HATE], "trans-inflammatory", "parentsagainstagenda.substack.com", "p/{short}",
     "Gender ideology is child abuse and teachers pushing it belong in prison"),

    # --- Hate speech and acts of aggression
    ([HATE], "racist-forum", "www.whiteheritageforum.org", "threads/{short}.88211/",
     "Why our race must stay separate - the biology they won't teach you"),
    ([HATE, MISINFO], "antisemitic-conspiracy", "www.truthawakened.net", "articles/{short}",
     "Who really controls the banks? Follow the surnames"),
    ([HATE], "anti-muslim", "www.youtube.com", "watch?v=pX2nD8sKq4E",
     "MUSLIMS OUT!! Full rally speech from Saturday - share before they delete it"),
    ([HATE], "racist-post", "gab.com", "NationalistNick/posts/111222333444555666",
     "Nick (@NationalistNick) on Gab: 'They are not our people and never will be.'"),
    ([HATE], "misogyny", "incelcommunity.is", "threads/{slug}.551234/",
     "Women are not human beings, they are parasites"),
    ([HATE], "homophobic-sermon", "www.faithfulremnantbaptist.org", "sermons/2024-03-10",
     "God hates the sodomite agenda - Pastor's Sunday sermon"),
    ([HATE, MISINFO], "holocaust-denial", "www.revisionist-archive.net", "docs/{short}.html",
     "The six million lie: what the census numbers really show"),
    ([HATE], "harassment-list", "exposethetraitors.blog", "2024/03/journalists-list/",
     "Find them and make them pay: the traitor journalists list (addresses inside)"),
    ([HATE], "racist-blog", "www.reveil-identitaire.fr", "{slug}/",
     "Les immigrés sont des parasites, il est temps de se réveiller"),
    ([HATE], "racist-blog", "www.heimatwacht-blog.de", "{slug}/",
     "Ausländer raus! Warum wir uns endlich wehren müssen"),

    # --- Illegal drugs, tobacco, e-cigarettes, vaping, alcohol
    ([DRUGS], "vape-shop", "www.cloudchaservapes.co.uk", "products/{slug}",
     "Elf Bar 600 Blue Razz Lemonade - 20mg Nic Salt Disposable"),
    ([DRUGS], "thc-edibles", "www.highfliers-edibles.com", "products/delta-9-thc-gummies-500mg",
     "Delta-9 THC Gummies 500mg - Sour Watermelon | Ships to all 50 states"),
    ([DRUGS], "darknet-drugs", "drugmarket-onion.link", "listing/88213",
     "MDMA crystals 84% - stealth shipping EU - 10g/25g/50g"),
    ([DRUGS], "cannabis-grow", "www.growweedeasy-guide.com", "how-to-grow-huge-autoflower-buds-indoors/", None),
    ([DRUGS], "trip-report", "www.reddit.com", "r/LSD/comments/1c2k9vx/my_first_200ug_trip_report/",
     "My first 200ug trip report - absolutely life changing : r/LSD"),
    ([DRUGS], "liquor-shop", "www.spiritsdirect-online.com", "whisky/{slug}",
     "Lagavulin 16 Year Old Islay Single Malt Scotch Whisky 70cl"),
    ([DRUGS], "drinking-games", "www.partyhardguide.com", None,
     "25 drinking games that will get you wasted fast"),
    ([DRUGS], "cigarettes", "www.cheapcigs-dutyfree.net", "marlboro-gold-cartons-duty-free", None),
    ([DRUGS], "magic-mushrooms", "www.shroomgrowkits.shop", "products/golden-teacher-spore-syringe-10ml", None),
    ([DRUGS], "kratom", "www.kratomkingdom-shop.com", "products/{slug}",
     "Red Maeng Da Kratom Powder 250g – Premium Grade"),
    ([DRUGS], "cannabis", "www.youtube.com", "watch?v=dF7kR3nQz1M",
     "Smoking a 2g blunt in one go 💨 (don't try this lol)"),
    ([DRUGS], "nitrous-oxide", "www.lachgas-lieferdienst.de", "p/2kg",
     "Lachgas kaufen – 2kg Flasche mit Ballons, Lieferung in 30 Minuten"),

    # --- Obscenity and profanity
    ([PROFANITY], "rant", "www.reddit.com", "r/rant/comments/1b9xk2a/fuck_my_landlord_seriously_fuck_him/",
     "Fuck my landlord. Seriously, fuck him. : r/rant"),
    ([PROFANITY], "rant-video", "www.youtube.com", "watch?v=hT6vYq0sNwE",
     "This shit is f*cking ridiculous - the worst games of 2023"),
    ([PROFANITY], "sweary-merch", "www.sweary-tees.com", "products/{slug}",
     "I Don't Give A Flying F*ck - Unisex T-Shirt"),
    ([PROFANITY], "slang-dictionary", "www.urbandictionary.com", "define.php?term=shitshow",
     "Urban Dictionary: shitshow"),
    ([PROFANITY], "rant", "medium.com", "@burntoutdev/{slug}-4b1c9e0d7f21",
     "I'm done with this hustle culture bullshit"),
    ([PROFANITY], "rant-video", "www.tiktok.com", "@unfilteredmike/video/7341234567890123456",
     "bro said WHAT 💀 f*ck this job fr #rant #storytime | TikTok"),
    ([PROFANITY], "crude-jokes", "www.dirtyjokesdaily.net", "jokes/{short}",
     "40 filthy jokes you absolutely cannot tell your mum"),
    ([PROFANITY], "insults", "www.banterbible.co.uk", "50-filthy-insults-to-shout-at-your-mates/", None),
    ([PROFANITY], "sweary-merch", "www.swearycards.shop", "products/you-absolute-fucking-legend-birthday-card", None),

    # --- Online piracy
    ([PIRACY], "torrent", "1337x-proxy.to", "torrent/5581234/Oppenheimer-2023-1080p-WEBRip-x264-YTS/",
     "Download Oppenheimer (2023) [1080p] [WEBRip] [5.1] [YTS.MX] Torrent | 1337x"),
    ([PIRACY], "free-streaming", "www.watchfree-movies24.cc", "movie/{short}-8812",
     "Watch Dune: Part Two (2024) Full Movie Online Free HD"),
    ([PIRACY], "iptv", "www.iptv-unlimited4k.com", "pricing",
     "IPTV Subscription 12 Months - 20,000+ Channels, Sky Sports, PPV, No Buffering"),
    ([PIRACY], "cracked-software", "getintopc-free.net", "softwares/{short}",
     "Adobe Photoshop 2024 v25.4 Free Download (Pre-Activated)"),
    ([PIRACY], "ebook-piracy", "www.pdfbooks-free.top", "book/1881234",
     "Fourth Wing PDF EPUB free download - Rebecca Yarros"),
    ([PIRACY], "roms", "nswroms-direct.com", "super-mario-bros-wonder-nsp-switch-rom-download/", None),
    ([PIRACY], "anime-streaming", "www.animefreewatch.tv", "watch/jujutsu-kaisen-season-2-episode-18-english-sub", None),
    ([PIRACY], "music-leak", "mp3leaks-zone.net", "album/7731",
     "Taylor Swift - The Tortured Poets Department (Deluxe) [320kbps] zip"),
    ([PIRACY], "sports-streaming", "www.soccerstreams-hd.live", "match/99120?ref=reddit",
     "Man City vs Arsenal Live Stream Free | Premier League | HD No Signup"),
    ([PIRACY], "free-streaming", "www.french-stream-hd.cam", "films/{short}.html",
     "Regarder Le Comte de Monte-Cristo (2024) en streaming VF gratuit"),

    # --- Spam or harmful content (phishing, malware, scams)
    ([SPAM], "phishing", "secure-login.paypa1-verification.com",
     "webapps/signin?cmd=_account-update&session=8f3a9c21",
     "PayPal: Log In to Confirm Your Identity"),
    ([SPAM], "fake-prize", "www.winner-rewards-claim.top", "spin?uid=88213&src=push",
     "Congratulations! You have been selected to win an iPhone 15 Pro"),
    ([SPAM], "tech-support-scam", "windows-defender-alert.help", "alert/0x80070643",
     "Your PC is infected with (5) viruses! Call Microsoft Support now"),
    ([SPAM], "malware-generator", "robux-free-gen.xyz", "{short}",
     "Free Robux Generator 2024 - No Human Verification"),
    ([SPAM], "crypto-scam", "musk-btc-event.live", "giveaway",
     "Elon Musk 5,000 BTC Giveaway — send 0.1 BTC, receive 0.2 BTC back"),
    ([SPAM], "pharma-spam", "oldtownbakery-blog.wordpress.com", "2019/05/{short}/",
     "Buy Cheap Cialis Online No Prescription – Fast Overnight Delivery – Canada Pharmacy"),
    ([SPAM], "work-from-home-scam", "dailyfinance-report.live", "article/?cid=77123&sub=fb",
     "Mum earns $750 a day from home — Google is hiring (limited spots)"),
    ([SPAM], "phishing", "dhl-redelivery-fee.info", "track?id=DE884102233",
     "DHL: Your parcel is on hold – pay €1.99 customs fee"),
    ([SPAM], "malware-generator", "free-v-bucks-generator.online", "claim-now?ref=tiktok", None),
    ([SPAM], "diet-pill-scam", "news-health-daily.today", "keto/?aff_id=3312",
     "Shark Tank keto pills: 'burn 1kg of fat a day' — doctors furious"),
    ([SPAM], "phishing", "ameli-renouvellement-carte.com", "connexion",
     "Ameli : votre carte Vitale doit être renouvelée"),
    ([SPAM], "malware-apk", "whatsapp-gold-download.net", "dl/apk?ver=24.3",
     "Download WhatsApp Gold APK 2024 - new features, unlimited"),

    # --- Terrorism
    ([TERROR], "jihadist-propaganda", "www.youtube.com", "watch?v=N2sH8kWq3Xa",
     "Soldiers of the caliphate in Wilayat Sahel - full release part 3"),
    ([TERROR, HATE], "attacker-glorification", "accelerate-or-die.top", "posts/{short}",
     "Remembering our saints: a tribute to the lone wolves who fought back"),
    ([TERROR], "manifesto", "www.fileshare-anon.xyz", "download/manifesto-great-replacement-full-pdf", None),
    ([TERROR], "bomb-instructions", "archive-inspire-mag.org", "issue-1/{short}",
     "Make a bomb in the kitchen of your mom"),
    ([TERROR], "jihadist-recruitment", "hijrah-guide.blogspot.com", "2023/09/{short}.html",
     "Brothers, the path of hijrah is open - how to reach the land of the khilafah"),
    ([TERROR], "jihadist-propaganda", "t.me", "s/nashir_news_eng",
     "Nashir News Agency – English"),
    ([TERROR], "accelerationist-sabotage", "blackpill-library.net", "texts/0042.html",
     "Sabotage guide: taking down power substations to bring the system down"),
    ([TERROR], "jihadist-propaganda", "www.dailymotion.com", "video/x8q2k7z",
     "Nasheed « Forward, soldiers of Islam » with English subtitles HD"),

    # --- Casinos & gambling
    ([GAMBLING], "casino-affiliate", "www.bestcasinobonuses-uk.co.uk", "reviews/{short}",
     "Spin Palace Casino Review 2024 – £1,000 Welcome Bonus + 100 Free Spins"),
    ([GAMBLING], "slots", "www.slotsvault-online.com", "play/book-of-dead",
     "Play Book of Dead Slot for Real Money – 96.21% RTP"),
    ([GAMBLING], "sports-betting", "www.accatipsdaily.com", "football/{short}/",
     "Premier League Betting Tips: Saturday's Accumulator at 25/1"),
    ([GAMBLING], "crypto-casino", "www.cryptospin-casino.io", "casino/games/crash",
     "Crash – Provably Fair Crypto Game | CryptoSpin"),
    ([GAMBLING], "poker", "www.pokerpro-room.net", "promotions/sunday-million-freeroll",
     "$1M Guaranteed Sunday Freeroll — Register Now"),
    ([GAMBLING], "casino-affiliate", "www.nodepositbonus-codes.club", "free-spins-no-deposit-no-wagering-2024", None),
    ([GAMBLING], "lottery-betting", "lottobet-world.com", "euromillions?utm_source=google&utm_medium=cpc&gclid=Cj0KCQ",
     "Bet on tonight's EuroMillions draw — €130m jackpot"),
    ([GAMBLING], "slots-streamer", "www.youtube.com", "watch?v=Gx9qL2vRt7c",
     "I put $10,000 into Gates of Olympus... MAX WIN??"),
    ([GAMBLING], "casino-affiliate", "www.casino-en-ligne-fiable.fr", None,
     "Meilleurs casinos en ligne 2024 : bonus sans dépôt et retraits rapides"),
    ([GAMBLING], "sports-betting", "www.apuestas-pronosticos.es", "futbol/{short}",
     "Apuestas Real Madrid vs Barcelona: pronóstico y cuotas del Clásico"),
    ([GAMBLING], "skin-gambling", "csgo-caseclash.gg", "r/TWITCH50",
     "CS2 Case Opening – free $0.50 with code TWITCH50"),

    # --- Misinformation
    ([MISINFO], "vaccine-misinfo", "www.healthfreedom-truth.net", "article/8f3a9c21",
     "The COVID vaccine contains graphene oxide — here's the proof they hid"),
    ([MISINFO], "5g-misinfo", "www.wakeupworld-news.org", "2024/01/{short}/",
     "5G towers are killing the birds — what they won't tell you"),
    ([MISINFO], "election-misinfo", "electionintegritynow.substack.com", "p/{short}",
     "PROOF: 400,000 dead voters cast ballots in Michigan"),
    ([MISINFO], "flat-earth", "www.youtube.com", "watch?v=Fe7tY1mN0rQ",
     "Flat Earth: 10 experiments NASA doesn't want you to see"),
    ([MISINFO], "chemtrails", "www.skywatch-europe.net", "index.php?p=1201",
     "Chemtrails over Europe: lab tests confirm barium and aluminium in rainwater"),
    ([MISINFO], "cancer-cure-misinfo", "www.naturalcures-revealed.com", "p/31190",
     "Doctors stunned: this baking soda protocol shrinks tumours in 3 weeks"),
    ([MISINFO], "climate-denial", "www.climate-realists-daily.com", "posts/0b7e12",
     "Climate change is a hoax invented to tax you — the data they hide"),
    ([MISINFO], "moon-landing-hoax", "www.awakened-patriot.news", "2024/03/moon-landing-was-filmed-in-nevada-new-evidence", None),
    ([MISINFO], "vaccine-misinfo", "www.reinformation-sante.fr", "{slug}/",
     "Le vaccin ARN modifie votre ADN : un biologiste brise le silence"),
    ([MISINFO], "ivermectin-misinfo", "frontlinetruth.substack.com", "p/{short}",
     "The ivermectin protocol the FDA buried (full dosing chart)"),
]

# Reporting, explaining, debating or treating a sensitive topic: brand-safe under GARM.
# (topic, host, path, title)
REPORTING = [
    # --- war and military conflict
    ("war-news", "www.bbc.co.uk", "news/world-europe-68512345",
     "Ukraine war: Russian missile strike on Odesa kills 20 - BBC News"),
    ("war-news", "www.reuters.com", "world/middle-east/{slug}-2024-03-12/",
     "Israeli strikes kill dozens in Gaza as ceasefire talks stall | Reuters"),
    ("war-news", "apnews.com", "article/sudan-war-el-fasher-rsf-famine-4c1e6a1b2f7d4b0e9a8c3d5e6f708192",
     "Sudan's paramilitary forces besiege El Fasher as famine spreads | AP News"),
    ("war-news", "www.aljazeera.com", "news/2024/3/12/{short}",
     "Death toll from Israeli attacks on Gaza passes 31,000, health ministry says"),
    ("war-news", "www.theguardian.com", "world/2024/feb/24/{short}",
     "Two years of war in Ukraine: the soldiers who stay on the front line | Ukraine | The Guardian"),
    ("war-news", "www.nytimes.com", "2024/03/10/world/europe/{short}.html",
     "Drone Warfare Is Reshaping the Battle for Eastern Ukraine - The New York Times"),
    ("war-news", "edition.cnn.com", "2024/01/12/middleeast/{short}-intl/index.html",
     "US and UK strike Houthi targets in Yemen after Red Sea attacks | CNN"),
    ("war-news", "www.lemonde.fr", "international/article/2024/03/12/{slug}_6216789_3210.html",
     "Guerre en Ukraine : Kharkiv de nouveau visée par des frappes russes"),
    ("war-news", "www.spiegel.de", "ausland/{short}-a-3f2b9c1e-5d4a-4f0b-9a6e-2c8d7e1f0a3b",
     "Krieg in Nahost: Hilfsorganisationen warnen vor Hungersnot im Gazastreifen - DER SPIEGEL"),
    ("war-history", "en.wikipedia.org", "wiki/Battle_of_Bakhmut", "Battle of Bakhmut - Wikipedia"),
    ("war-history", "www.britannica.com", "event/World-War-II",
     "World War II | Facts, Summary, History, Dates, Combatants, & Causes | Britannica"),
    ("war-news", "www.theguardian.com",
     "world/2024/apr/02/world-central-kitchen-aid-workers-killed-israeli-strike-gaza", None),
    ("war-documentary", "www.youtube.com", "watch?v=kQ3mZ8rT1vA",
     "Inside Sudan's forgotten war | DW Documentary"),
    ("history-travel", "www.lonelyplanet.com", "articles/{short}",
     "Visiting Auschwitz-Birkenau from Kraków: what to know before you go"),

    # --- terrorism: trials, attacks as news, counter-terrorism policy
    ("terrorism-news", "www.bbc.co.uk", "news/uk-england-manchester-64798123",
     "Manchester Arena Inquiry: MI5 missed chance to stop bomber - BBC News"),
    ("terrorism-news", "www.reuters.com", "world/europe/{slug}-2024-03-24/",
     "Moscow concert hall attack death toll rises to 137"),
    ("counter-terrorism", "www.npr.org", "2024/03/12/1237654321/{short}",
     "How the FBI's counterterrorism focus is shifting toward domestic extremism : NPR"),
    ("counter-terrorism", "www.gov.uk", "government/publications/counter-terrorism-strategy-contest-2023",
     "CONTEST: The United Kingdom's Strategy for Countering Terrorism 2023 - GOV.UK"),
    ("terrorism-history", "en.wikipedia.org", "wiki/September_11_attacks", "September 11 attacks - Wikipedia"),
    ("terrorism-trial", "www.lemonde.fr", "societe/article/2022/12/13/{slug}_6154321_3224.html",
     "Procès de l'attentat de Nice : la cour prononce des peines de deux à dix-huit ans de prison"),
    ("terrorism-trial", "www.bbc.com", "news/articles/cn0k3x4lw1zo",
     "Teenager jailed for planning terror attack after being radicalised online - BBC News"),
    ("terrorism-feature", "www.aljazeera.com", "features/2024/2/5/{short}",
     "Inside the camps holding ISIL families in northeast Syria"),
    ("terrorism-trial", "www.bbc.com", "news/articles/c9rz4kx1q2no", "Hamburg attack trial: Man sentenced to life for plotting synagogue bombing"),

    # --- crime news and scam awareness
    ("crime-news", "www.bbc.com", "news/articles/c0kgx3y5m7wo",
     "Man jailed for life for murder of woman in Leeds park - BBC News"),
    ("fraud-news", "apnews.com", "article/{short}-9b2f0c7e5d1a4e3f8c6b7a9d0e1f2a3b",
     "Former crypto executive sentenced to 25 years for multibillion-dollar fraud"),
    ("crime-news", "www.nytimes.com", "2024/02/29/nyregion/{short}.html",
     "Jury Finds Man Guilty in Fatal Shooting at Bronx Subway Station"),
    ("crime-news", "www.cnn.com", "2024/03/05/us/{short}/index.html",
     "Police arrest suspects in string of burglaries targeting pro athletes' homes"),
    ("human-trafficking-news", "www.theguardian.com", "uk-news/2024/mar/01/{short}",
     "Trafficking gang jailed for exploiting workers at car washes across the Midlands"),
    ("human-trafficking-news", "www.reuters.com", "world/{short}-2023-10-24/",
     "Interpol operation rescues hundreds of trafficking victims across 39 countries"),
    ("crime-news", "www.theguardian.com", "uk-news/2024/mar/08/county-lines-drug-gang-sentenced-liverpool", None),
    ("crime-news", "www.lefigaro.fr", "actualite-france/{slug}-20240312",
     "Marseille : un adolescent tué par balle dans un nouveau règlement de comptes lié au narcotrafic"),
    ("fraud-news", "elpais.com", "espana/madrid/2024-03-12/{short}.html",
     "Detenidas 14 personas por una red de estafas telefónicas a ancianos en Madrid"),
    ("crime-explainer", "en.wikipedia.org", "wiki/Identity_theft", "Identity theft - Wikipedia"),
    ("scam-awareness", "consumer.ftc.gov", "articles/how-recognize-and-avoid-phishing-scams", None),
    ("scam-awareness", "www.ncsc.gov.uk", "collection/phishing-scams",
     "Phishing: Spot and report scam emails, texts, websites and callers - NCSC.GOV.UK"),
    ("scam-awareness", "www.which.co.uk", "consumer-rights/advice/{short}-aHhJk8A2b9s",
     "How to spot a fake parcel delivery text or email - Which?"),
    ("security-advice", "www.malwarebytes.com", "blog/news/2024/03/{short}",
     "Fake Robux generators are stealing kids' accounts. Here's how to spot them"),

    # --- drugs, alcohol, tobacco, vaping: health and policy
    ("drug-health-info", "www.webmd.com", "mental-health/addiction/marijuana-use-and-its-effects", None),
    ("drug-health-info", "nida.nih.gov", "publications/drugfacts/cannabis-marijuana",
     "Cannabis (Marijuana) DrugFacts | National Institute on Drug Abuse (NIDA)"),
    ("vaping-health", "www.cdc.gov", "tobacco/e-cigarettes/health-effects.html",
     "Health Effects of Vaping | Smoking and Tobacco Use | CDC"),
    ("alcohol-guidelines", "www.nhs.uk", "live-well/alcohol-advice/calculating-alcohol-units/",
     "Alcohol units - NHS"),
    ("alcohol-health", "www.who.int", "news-room/fact-sheets/detail/alcohol", "Alcohol"),
    ("opioid-crisis", "www.nytimes.com", "2024/01/08/health/{short}.html",
     "The Opioid Crisis Is Changing. Fentanyl Is Now Mixed With Xylazine."),
    ("drug-policy", "www.npr.org", "2024/03/01/1235012345/{short}",
     "Oregon lawmakers vote to recriminalize drug possession : NPR"),
    ("drug-policy", "www.reuters.com", "world/us/{slug}-2024-04-30/",
     "US moves to reclassify marijuana as a less dangerous drug"),
    ("addiction-health", "www.mayoclinic.org", "diseases-conditions/drug-addiction/symptoms-causes/syc-20365112",
     "Drug addiction (substance use disorder) - Symptoms and causes - Mayo Clinic"),
    ("vaping-news", "www.theguardian.com", "society/2024/jan/28/{short}",
     "'It's like a craze': the schools trying to stop children vaping"),
    ("harm-reduction", "www.talktofrank.com", "drug/mdma", "MDMA | Effects of MDMA | FRANK"),
    ("drug-health-info", "www.cdc.gov", "overdose-prevention/about/fentanyl.html", None),
    ("alcohol-health", "www.ameli.fr", "assure/sante/themes/alcool-sante/consommation-alcool-risques",
     "Alcool et santé : les risques d'une consommation excessive | ameli.fr | Assuré"),
    ("drug-policy", "www.zeit.de", "gesundheit/2024-03/{short}",
     "Cannabis-Legalisierung: Was ab April erlaubt ist – und was nicht | ZEIT ONLINE"),
    ("tobacco-health", "www.nhs.uk", "better-health/quit-smoking/", "Quit smoking - Better Health - NHS"),
    ("drug-education-parenting", "www.healthychildren.org",
     "English/ages-stages/teen/substance-abuse/Pages/{short}.aspx",
     "How to Talk With Your Teen About Drugs and Alcohol"),
    ("drug-policy-explainer", "www.youtube.com", "watch?v=Vx4pR8tN2kE",
     "Why fentanyl is so hard to stop | Vox"),

    # --- sex education, sexual health, porn policy
    ("sex-education", "www.plannedparenthood.org", "learn/birth-control/condom",
     "How Effective Are Condoms? | Condom Effectiveness"),
    ("sexual-health", "www.nhs.uk", "conditions/sexually-transmitted-infections-stis/",
     "Sexually transmitted infections (STIs) - NHS"),
    ("sexual-health", "www.mayoclinic.org", "diseases-conditions/erectile-dysfunction/symptoms-causes/syc-20355776",
     "Erectile dysfunction - Symptoms and causes - Mayo Clinic"),
    ("sexual-health", "www.healthline.com", "health/healthy-sex/{short}",
     "Is It Normal to Have a Low Sex Drive? Causes and What Helps"),
    ("porn-policy-news", "www.theguardian.com", "society/2023/jan/31/{short}",
     "Pornography is shaping young people's ideas about sex, children's commissioner warns"),
    ("porn-policy-news", "www.bbc.co.uk", "news/technology-67912345",
     "Online Safety Act: What age checks on porn sites will mean for you - BBC News"),
    ("sex-education", "en.wikipedia.org", "wiki/Sex_education", "Sex education - Wikipedia"),
    ("sex-education", "www.questionsexualite.fr", "choisir-sa-contraception/le-preservatif-masculin",
     "Le préservatif masculin | Question Sexualité"),
    ("sexual-health", "www.plannedparenthood.org", "learn/stds-hiv-safer-sex/hiv", None),

    # --- guns: legislation, statistics, shootings as news
    ("gun-control-legislation", "apnews.com", "article/3d5e7f9a1b2c4d6e8f0a1b2c3d4e5f60",
     "Supreme Court upholds law barring domestic abusers from having guns"),
    ("gun-control-legislation", "edition.cnn.com", "2024/04/11/politics/{short}/index.html",
     "Biden administration finalizes rule to close 'gun show loophole'"),
    ("gun-statistics", "www.pewresearch.org", "short-reads/2023/04/26/{slug}/",
     "What the data says about gun deaths in the U.S."),
    ("mass-shooting-news", "www.theguardian.com", "us-news/2022/may/24/{short}",
     "Texas school shooting: 19 children and two teachers killed in Uvalde"),
    ("gun-control-debate", "www.bbc.co.uk", "news/world-us-canada-41488081",
     "America's gun culture - in seven charts - BBC News"),
    ("gun-law-explainer", "en.wikipedia.org", "wiki/Second_Amendment_to_the_United_States_Constitution",
     "Second Amendment to the United States Constitution - Wikipedia"),
    ("gun-control-legislation", "www.npr.org", "2023/11/03/1210312345/illinois-assault-weapons-ban-court-ruling", None),
    ("gun-health", "www.cdc.gov", "firearm-violence/about/index.html",
     "About Firearm Injury and Death | Firearm Violence Prevention | CDC"),

    # --- hate crime statistics, extremism research, anti-racism
    ("hate-crime-stats", "www.justice.gov", "hatecrimes/hate-crime-statistics",
     "Hate Crime Statistics | United States Department of Justice"),
    ("hate-crime-stats", "www.gov.uk", "government/statistics/hate-crime-england-and-wales-2022-to-2023",
     "Hate crime, England and Wales, 2022 to 2023 - GOV.UK"),
    ("hate-crime-news", "www.bbc.com", "news/articles/c72xk1wn8p3o",
     "Antisemitic incidents in UK hit record high in 2023, says charity"),
    ("hate-crime-news", "apnews.com", "article/0f1e2d3c4b5a69788796a5b4c3d2e1f0",
     "Man charged with hate crime after attack on Sikh men in Queens"),
    ("extremism-research", "www.nytimes.com", "2023/05/20/technology/{short}.html",
     "How White Supremacist Propaganda Spreads Online"),
    ("hate-explainer", "www.adl.org", "resources/backgrounder/great-replacement-theory",
     "The Great Replacement: An Explainer | ADL"),
    ("anti-racism", "www.britannica.com", "topic/civil-rights-movement",
     "American civil rights movement | Definition, Leaders, Events, & Facts | Britannica"),

    # --- piracy: lawsuits, enforcement, policy
    ("piracy-lawsuit", "www.reuters.com", "legal/{short}-2023-08-14/",
     "Music labels sue Internet Archive over digitized vintage records"),
    ("piracy-news", "torrentfreak.com", "{short}-240312/",
     "Pirate IPTV Operator Sentenced to Five Years in Prison"),
    ("piracy-news", "www.bbc.co.uk", "news/uk-england-68390123",
     "Man jailed for selling 'dodgy' Fire Sticks for illegal streaming - BBC News"),
    ("piracy-lawsuit", "www.theverge.com", "2024/3/12/24098765/{short}",
     "Nintendo wins $2.4 million from Switch ROM site operator"),
    ("piracy-history", "en.wikipedia.org", "wiki/The_Pirate_Bay", "The Pirate Bay - Wikipedia"),

    # --- gambling: industry business news, regulation, addiction support
    ("casino-industry", "www.reuters.com", "business/{short}-2024-04-24/",
     "MGM Resorts quarterly revenue beats estimates on strong Las Vegas demand"),
    ("casino-industry", "www.ft.com", "content/6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
     "Macau casino stocks rally as visitor numbers near pre-Covid levels"),
    ("gambling-policy", "www.bbc.co.uk", "news/business-67991234",
     "Online slot stakes to be capped at £5 for adults - BBC News"),
    ("gambling-harm", "www.theguardian.com", "society/2024/feb/10/{short}",
     "'I lost £80,000 in a year on my phone': the hidden toll of gambling addiction"),
    ("gambling-health", "www.nhs.uk", "live-well/addiction-support/gambling-addiction/", None),
    ("gambling-news", "apnews.com", "article/7e6d5c4b3a2910f8e7d6c5b4a3928170",
     "Sports betting boom raises concerns about addiction among young men"),
    ("casino-industry", "www.reuters.com", "business/flutter-entertainment-moves-primary-listing-new-york-2024-05-31/", None),

    # --- misinformation: fact-checks and media literacy
    ("election-factcheck", "www.reuters.com", "fact-check/{short}-2024-03-12/",
     "Fact Check: Video does not show ballots being destroyed in Arizona"),
    ("vaccine-factcheck", "www.politifact.com", "factchecks/2024/mar/12/facebook-posts/{short}/",
     "No, COVID-19 vaccines don't contain graphene oxide"),
    ("misinformation-factcheck", "www.snopes.com", "fact-check/{short}/", "Are 5G Towers Killing Birds?"),
    ("election-factcheck", "apnews.com", "article/{short}-1a2b3c4d5e6f70819203a4b5c6d7e8f9",
     "FACT FOCUS: False claims of dead voters in Michigan resurface"),
    ("misinformation-news", "www.bbc.co.uk", "news/world-middle-east-67123456",
     "BBC Verify: How fake images of the Israel-Gaza war spread online - BBC News"),
    ("vaccine-factcheck", "www.liberation.fr", "checknews/{slug}-20240312_7HQ2ZQ4XGNEK5M3/",
     "Non, le vaccin à ARN ne modifie pas l'ADN"),
    ("misinformation-factcheck", "fullfact.org", "online/{short}/",
     "Chemtrails claim based on rainwater test is misleading"),
    ("conspiracy-explainer", "en.wikipedia.org", "wiki/Modern_flat_Earth_beliefs",
     "Modern flat Earth beliefs - Wikipedia"),

    # --- deaths, disasters, medicine, contested social questions
    ("obituary", "www.nytimes.com", "2024/02/16/world/europe/alexei-navalny-dead.html",
     "Alexei Navalny, Russian Opposition Leader, Dies in Prison at 47 - The New York Times"),
    ("obituary", "www.theguardian.com", "music/2024/may/09/{short}", "Steve Albini obituary"),
    ("disaster-news", "www.bbc.co.uk", "news/world-asia-68718765",
     "Taiwan earthquake: Nine dead and more than 900 injured - BBC News"),
    ("disaster-news", "apnews.com", "article/{short}-5f4e3d2c1b0a99887766554433221100",
     "Maui wildfire death toll rises as search teams comb Lahaina"),
    ("mental-health", "www.mayoclinic.org", "diseases-conditions/suicide/symptoms-causes/syc-20378048",
     "Suicide and suicidal thoughts - Symptoms and causes - Mayo Clinic"),
    ("medical", "www.nhs.uk", "conditions/head-injury-and-concussion/", "Head injury and concussion - NHS"),
    ("abortion-debate", "www.pewresearch.org", "religion/fact-sheet/public-opinion-on-abortion/", None),
    ("abortion-news", "www.bbc.co.uk", "news/world-us-canada-61928898",
     "Roe v Wade: What is the US Supreme Court ruling on abortion? - BBC News"),
    ("assisted-dying-news", "www.theguardian.com", "society/2024/nov/29/{short}",
     "MPs vote in favour of legalising assisted dying in England and Wales"),
    ("immigration-news", "www.theguardian.com", "uk-news/2024/apr/23/{short}",
     "Rwanda bill: what is the UK's deportation plan and will it work?"),
    ("transgender-policy-news", "apnews.com", "article/{short}-2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f",
     "Here's where transgender athletes are barred from competing in US states"),
]

# Ordinary pages, many sharing words with the risk categories (hard negatives).
# (topic, host, path, title)
SAFE = [
    # --- food and drink (cooking with alcohol, "bomb", "shot", "drunken", "deviled")
    ("cooking-with-wine", "www.bbcgoodfood.com", "recipes/{slug}", "Beef bourguignon recipe | BBC Good Food"),
    ("cooking-with-beer", "www.seriouseats.com", "{slug}-recipe-8601234",
     "Beer-Battered Fish and Chips"),
    ("one-pot", "www.thecozyspoonkitchen.com", "recipes/{slug}/", "One-Pot Creamy Tuscan Chicken Pasta"),
    ("recipe", "www.allrecipes.com", "recipe/23600/worlds-best-lasagna/", None),
    ("recipe-slang-bomb", "www.sugarandsprinkles-bakes.com", "recipes/{short}/",
     "Death by Chocolate Cake (seriously, this cake is the bomb)"),
    ("recipe-drunken", "www.foodnetwork.com", "recipes/{slug}-7219876",
     "Drunken Noodles (Pad Kee Mao)"),
    ("espresso-shot", "www.youtube.com", "watch?v=Es9pR4oT2bQ",
     "How to pull the perfect espresso shot at home (beginner's guide)"),
    ("cooking-with-vodka", "www.delish.com", "cooking/recipe-ideas/a37812345/{slug}/",
     "Best Penne alla Vodka Recipe"),
    ("cooking-with-rum", "www.pinterest.com", "pin/418834834123456789/",
     "Rum Raisin Bread Pudding | Recipe | Bread pudding, Desserts, Food"),
    ("cooking-with-wine", "www.marmiton.org", "recettes/recette_coq-au-vin_11111.aspx",
     "Coq au vin : la recette facile"),
    ("cooking-with-beer", "www.chefkoch.de", "rezepte/1234561229187654/{slug}.html",
     "Schweinebraten mit Dunkelbier-Soße"),
    ("cooking-with-beer", "www.thecozyspoonkitchen.com", "recipes/slow-cooker-guinness-beef-stew/", None),
    ("recipe-deviled", "www.simplyrecipes.com", "recipes/deviled_eggs/", None),
    ("cooking-video", "www.youtube.com", "watch?v=u1Xy8Qv2kLs",
     "Gordon Ramsay's Ultimate Steak Sandwich | Ultimate Cookery Course"),
    ("mocktails", "www.goodhousekeeping.com", "food-recipes/party-ideas/g4221/{short}/",
     "15 Alcohol-Free Mocktails That Taste Like the Real Thing"),
    ("recipe", "www.thekitchn.com", "{short}-23612345", "The Best Way to Cook Salmon, According to Our Test Kitchen"),

    # --- fitness and sport ("killer", "shooting guard", "penalty shootout", "knockout")
    ("killer-workout", "www.menshealth.com", "fitness/{short}/",
     "This 20-Minute Killer Leg Workout Builds Strength Fast"),
    ("workout-video", "www.youtube.com", "watch?v=Ab5hR3dTq9w",
     "Insane 15 Min Ab Shred - Destroy Your Core (No Equipment)"),
    ("athletics", "www.runnersworld.com", "training/{short}/", "Shot Put Technique for Beginners: 5 Drills"),
    ("basketball", "www.espn.com", "nba/story/_/id/39712345/{short}",
     "Warriors' shooting guard struggles continue in loss to Lakers"),
    ("football", "www.bbc.co.uk", "sport/football/68512399",
     "Arsenal 1-0 Porto (4-2 pens): Arsenal win penalty shootout to reach quarter-finals - BBC Sport"),
    ("biathlon", "www.eurosport.com", "biathlon/{short}_sto9912345/story.shtml",
     "Biathlon World Cup: Norway dominate women's pursuit with flawless shooting"),
    ("boxing", "www.skysports.com", "boxing/news/12183/13140123/{short}",
     "Usyk beats Fury by split decision to become undisputed heavyweight champion"),
    ("mma", "x.com", "ufc/status/1779312345678901234",
     "UFC on X: \"PEREIRA KNOCKS OUT HILL IN ROUND ONE!! #UFC300\""),
    ("football", "www.lequipe.fr", "Football/Actualites/{slug}/1456789",
     "Ligue des champions : le PSG s'impose aux tirs au but"),
    ("fantasy-football", "www.premierleague.com", "news/3912345",
     "FPL Gameweek 29: captain picks and differentials"),
    ("golf", "www.tiktok.com", "@golfwithjake/video/7345123456789012345",
     "5 drills to stop slicing your driver ⛳ #golf #golftips | TikTok"),
    ("archery", "www.archery360.com", "2023/05/15/{short}/", "Archery for Beginners: How to Shoot Your First Arrow"),

    # --- hunting for apartments, fishing, job hunting
    ("apartment-hunting", "streeteasy.com", "blog/{short}/", "Apartment Hunting in NYC: 12 Tips From a Broker"),
    ("fishing", "www.fieldandstream.com", "fishing/{short}/", "Fly Fishing for Trout: A Beginner's Guide"),
    ("job-hunting", "www.forbes.com", "sites/forbescoachescouncil/2024/01/10/{short}/",
     "Job Hunting After 50: How To Beat Age Bias"),
    ("fishing", "www.takemefishing.org", "how-to-fish/how-to-tie-fishing-knots/", None),

    # --- games ("Call of Duty", "kill", war games)
    ("gaming", "www.callofduty.com", "patchnotes/2024/03/mwiii-season-2-reloaded",
     "Call of Duty: Modern Warfare III Season 2 Reloaded Patch Notes"),
    ("gaming", "www.ign.com", "articles/{short}-review", "Helldivers 2 Review"),
    ("gaming", "www.reddit.com", "r/Eldenring/comments/1bbx7k2/how_do_i_kill_malenia_without_losing_my_mind/",
     "How do I kill Malenia without losing my mind? : r/Eldenring"),
    ("gaming", "store.steampowered.com", "app/1086940/Baldurs_Gate_3/", "Baldur's Gate 3 on Steam"),
    ("gaming", "www.pcgamer.com", "games/fps/counter-strike-2-best-crosshair-codes/", None),
    ("gaming", "www.youtube.com", "watch?v=mC7sE2gHk4P", "Minecraft, But I Can't Touch The Ground"),
    ("chess", "www.chess.com", "article/view/{short}",
     "The Dragon: A Killer Attack for Black in the Sicilian"),

    # --- film, TV, books, music (crime drama, war film, "Guns N' Roses", "The Killers")
    ("tv-review", "www.theguardian.com", "tv-and-radio/2024/apr/11/{short}",
     "Baby Reindeer review – a stalking drama so unsettling you'll want to look away"),
    ("tv-review", "www.vulture.com", "article/{short}.html",
     "True Detective: Night Country Finale Recap: Ice Cold"),
    ("tv-crime-drama", "www.imdb.com", "title/tt0903747/", "Breaking Bad (TV Series 2008–2013) - IMDb"),
    ("film-crime", "en.wikipedia.org", "wiki/The_Godfather", "The Godfather - Wikipedia"),
    ("tv-crime-drama", "www.netflix.com", "title/80025172", "Watch Narcos | Netflix Official Site"),
    ("books", "www.goodreads.com", "book/show/19288043-gone-girl", "Gone Girl by Gillian Flynn | Goodreads"),
    ("film-review", "www.theguardian.com", "film/2023/jul/19/{short}",
     "Oppenheimer review – a towering, explosive portrait of the father of the atomic bomb"),
    ("music-news", "www.nme.com", "news/music/{short}-3612345",
     "Guns N' Roses announce huge 2025 world tour dates"),
    ("music-video", "www.youtube.com", "watch?v=gGdGFtwCNBE", "The Killers - Mr. Brightside (Official Music Video)"),

    # --- travel ("Killarney", "shot in the dark")
    ("travel", "www.lonelyplanet.com", "articles/{short}", "The best things to do in Lisbon"),
    ("travel", "www.tripadvisor.com",
     "Attraction_Review-g186609-d215698-Reviews-Killarney_National_Park-Killarney_County_Kerry.html",
     "Killarney National Park - All You Need to Know BEFORE You Go (2024)"),
    ("travel", "www.booking.com", "hotel/fr/le-petit-paris.html?aid=304142&label=gen173nr-1FCAEoggI&sid=8f3a9c21",
     "Hotel Le Petit Paris, Paris (updated prices 2024)"),
    ("travel-photography", "www.nationalgeographic.com", "travel/article/{short}",
     "Shot in the dark: Iceland's best spots for night photography"),
    ("travel", "www.lonelyplanet.com", "articles/best-beaches-in-thailand", None),

    # --- tech ("kill a process", "killer camera", "nuke", "weapon")
    ("tech-review", "www.theverge.com", "2023/9/19/23879893/{short}",
     "iPhone 15 Pro review: titanium, USB-C and a killer camera"),
    ("programming", "stackoverflow.com", "questions/11583562/how-to-kill-a-process-running-on-particular-port-in-linux", None),
    ("programming", "github.com", "psf/requests", "GitHub - psf/requests: A simple, yet elegant, HTTP library."),
    ("programming", "www.freecodecamp.org", "news/{short}/",
     "Git Reset Hard: How to Nuke Your Local Changes and Start Over"),
    ("tech", "www.techradar.com", "vpn/{short}", "The best streaming VPN 2024: unblock Netflix, iPlayer and more"),
    ("tech-review", "www.tomshardware.com", "pc-components/gpus/{short}",
     "Nvidia GeForce RTX 4090 Review: A Monster GPU That Slays 4K"),
    ("tech-review", "www.xataka.com", "moviles/{short}",
     "Samsung Galaxy S24 Ultra, análisis: la IA como arma definitiva"),

    # --- finance ("killer bees", "poison pill", "bleed", "flee")
    ("finance", "www.investopedia.com", "terms/k/killerbees.asp", "Killer Bees: What It Means, How It Works, Example"),
    ("finance", "www.investopedia.com", "terms/p/poisonpill.asp", "Poison Pill: A Defense Strategy and Shareholder Rights Plan"),
    ("finance", "www.nerdwallet.com", "best/credit-cards/best-credit-cards", "Best Credit Cards of 2024 - NerdWallet"),
    ("finance-news", "www.cnbc.com", "2024/04/15/{short}.html",
     "Stock market today: Dow sheds 250 points as tech stocks bleed"),

    # --- parenting, health, home
    ("parenting", "www.whattoexpect.com", "toddler/behavior/{short}.aspx",
     "Toddler Tantrums: Why They Happen and How to Handle Them"),
    ("parenting-forum", "www.mumsnet.com", "talk/am_i_being_unreasonable/5012345-aibu-to-refuse-to-host-christmas-again",
     "AIBU to refuse to host Christmas again this year? | Mumsnet"),
    ("parenting", "www.thebump.com", "a/baby-shower-games", "22 Baby Shower Games That Are Actually Fun"),
    ("vaccination", "www.cdc.gov", "vaccines/parents/schedules/index.html",
     "Your Child's Vaccine Schedule: Shots at 2, 4 and 6 Months | CDC"),
    ("pregnancy", "www.babycentre.co.uk", "pregnancy/week-by-week", "Pregnancy week by week"),
    ("gardening", "www.gardenersworld.com", "how-to/grow-plants/{short}/",
     "How to kill weeds naturally, without chemicals"),
    ("gardening", "www.rhs.org.uk", "vegetables/tomatoes/grow-your-own", "How to grow tomatoes / RHS Gardening"),
    ("gardening", "www.gardenersworld.com", "plants/{short}/", "How to grow poppies from seed"),
    ("lawn-weeds", "www.bhg.com", "{short}-7503123", "How to Get Rid of Weeds in Your Lawn for Good"),
    ("poultry", "www.backyardchickens.com", "articles/{short}.12345/",
     "How to Sex Chicks: Telling Pullets from Cockerels"),
    ("gardening", "www.gardenersworld.com", "how-to/grow-plants/how-to-get-rid-of-slugs/", None),

    # --- cars and DIY ("weapon on track", "dead battery", "nail gun", "bath bombs")
    ("cars", "www.topgear.com", "car-reviews/bmw/m3/{short}",
     "BMW M3 Competition review: an absolute weapon on track"),
    ("cars", "www.rac.co.uk", "drive/advice/how-to/{short}/", "How to jump-start a car with a dead battery"),
    ("cars", "www.euroncap.com", "en/results/tesla/model-y/46618", "Official Tesla Model Y 2022 safety rating"),
    ("diy-shop", "www.amazon.com", "dp/B07D3F1K2M",
     "Amazon.com: Metabo HPT Brad Nailer, 18 Gauge, Pneumatic Nail Gun : Tools & Home Improvement"),
    ("diy-crafts", "www.thesprucecrafts.com", "{short}-5201234", "DIY Lavender Bath Bombs (Easy 5-Ingredient Recipe)"),
    ("diy", "www.bobvila.com", "articles/{short}/", "How to Strip Paint from Wood: 3 Methods That Work"),

    # --- fashion and beauty ("killer heels", "bomber jacket", "drugstore")
    ("fashion", "www.vogue.com", "article/{short}",
     "The Killer Heels Every Fashion Editor Is Wearing This Spring"),
    ("fashion", "www.instagram.com", "p/C4kZx2yN8aB/",
     "GQ on Instagram: \"Camo is back. Here's how to wear military-inspired jackets right now.\""),
    ("fashion-shop", "www.asos.com", "asos-design/asos-design-oversized-bomber-jacket-in-black/prd/205123456",
     "ASOS DESIGN oversized bomber jacket in black | ASOS"),
    ("drugstore-skincare", "www.allure.com", "gallery/{short}",
     "The Best Drugstore Skincare Products Under $20, According to Dermatologists"),
    ("beauty-shop", "www.boots.com", "no7-protect-perfect-intense-advanced-serum-30ml-10287654",
     "No7 Protect & Perfect Intense ADVANCED Serum 30ml - Boots"),

    # --- pets
    ("pets", "www.thesprucepets.com", "{short}-5201987", "Why Does My Cat Bring Me Dead Mice?"),
    ("pets", "www.akc.org", "expert-advice/training/{short}/", "How to Stop Your Puppy From Biting"),
    ("pets", "www.reddit.com", "r/aww/comments/1bcd2ef/this_absolute_unit_of_a_cat/",
     "This absolute unit of a cat : r/aww"),

    # --- education and reference ("killer essay", "apoptosis", "break a leg")
    ("education", "www.khanacademy.org", "math/algebra/x2f8bb11595b61c86:solve-equations-inequalities",
     "Solving equations & inequalities | Algebra 1 | Math | Khan Academy"),
    ("education", "www.princetonreview.com", "college-advice/{short}",
     "How to Write a Killer College Essay"),
    ("education", "www.coursera.org", "learn/machine-learning",
     "Supervised Machine Learning: Regression and Classification | Coursera"),
    ("education", "www.britannica.com", "science/apoptosis", "Apoptosis | Definition, Process, & Facts | Britannica"),
    ("language", "www.merriam-webster.com", "wordplay/{short}", "Why Do We Say 'Break a Leg'?"),
    ("podcast-true-crime", "open.spotify.com", "episode/4rOoJ6Egrf8K2IrywzwOMk",
     "Why Are We So Obsessed With True Crime? | Podcast on Spotify"),
    ("fashion-shop", "www.ebay.co.uk", "itm/295812345678",
     "Vintage Barbour Bedale Wax Jacket Olive Green Size 40 | eBay"),
    ("leisure", "www.journaldesfemmes.fr", "loisirs/{short}-2890123",
     "12 idées pour tuer le temps pendant un long trajet en train"),

    # --- everyday listings
    ("real-estate", "www.zillow.com", "homedetails/123-Main-St-Austin-TX-78701/29412345_zpid/",
     "123 Main St, Austin, TX 78701 | Zillow"),
    ("jobs", "uk.indeed.com", "viewjob?jk=8f3a9c21d4e5b6a7&from=serp",
     "Bartender - The Crown & Anchor - London | Indeed.com"),
    ("weather", "www.metoffice.gov.uk", "weather/forecast/gcpvj0v07", "London (Greater London) weather - Met Office"),
    ("home", "www.ikea.com", "gb/en/p/kallax-shelving-unit-white-80275887/", None),
]

GROUPS = (("harmful", HARMFUL), ("reporting", REPORTING), ("safe", SAFE))

# Dropped by "{short}" slugs, the way many CMSs trim a headline into a path.
STOP_WORDS = frozenset(
    "a an the of to in on for and or at by with from is are was be this that it its as your you our "
    "how what why here's le la les de des du un une et en au aux el los las del con".split()
)


def slugify(text: str, drop_stop_words: bool = False) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower().replace("'", ""))
    if drop_stop_words:
        words = [w for w in words if w not in STOP_WORDS][:8]
    return "-".join(words)


def headline(title: str) -> str:
    """The title without the site name a page appends after ' | ' or ' - '."""
    return re.split(r" \| | - ", title)[0]


def make_url(host: str, path: str | None, title: str | None) -> str:
    if path is None or "{" in path:
        if title is None:
            raise ValueError(f"{host}: a slug path needs a title")
        text = headline(title)
        path = "{slug}/" if path is None else path
        path = path.format(slug=slugify(text), short=slugify(text, drop_stop_words=True))
    return f"https://{host}/{path}"


def build() -> list[dict]:
    rows = []
    for group, table in GROUPS:
        for entry in table:
            labels, (topic, host, path, title) = (entry[0], entry[1:]) if group == "harmful" else ([], entry)
            rows.append({
                "url": make_url(host, path, title),
                "title": title,
                "labels": [label for label in LABELS if label in labels],  # canonical order
                "group": group,
                "topic": topic,
                "source": SOURCE,
                "source_label": f"{group}:{topic}",
            })
    return sorted(rows, key=lambda r: r["url"])


def check(rows: list[dict]) -> list[str]:
    """Everything that would make a row unusable as an evaluation example."""
    problems = []
    seen = Counter(r["url"] for r in rows)
    problems += [f"duplicate url: {u}" for u, n in seen.items() if n > 1]
    for r in rows:
        parts = urlsplit(r["url"])
        if parts.scheme != "https" or not parts.netloc or parts.path in ("", "/"):
            problems.append(f"bad url: {r['url']}")
        if "youtube.com" in parts.netloc and not re.fullmatch(r"v=[A-Za-z0-9_-]{11}", parts.query):
            problems.append(f"bad youtube id: {r['url']}")
        problems += [f"unknown label {x!r}: {r['url']}" for x in r["labels"] if x not in LABELS]
        if (r["group"] == "harmful") != bool(r["labels"]):
            problems.append(f"labels do not match group {r['group']}: {r['url']}")
        if r["title"] is not None and not r["title"].strip():
            problems.append(f"empty title: {r['url']}")
    return problems


def opaque(row: dict) -> bool:
    """True when the URL's path shares no word with the headline, so only the title says what it is."""
    if row["title"] is None:
        return False
    parts = urlsplit(row["url"])
    words = set(re.findall(r"[a-z0-9]{4,}", slugify(headline(row["title"]))))
    return not words & set(re.findall(r"[a-z0-9]{4,}", f"{parts.path} {parts.query}".lower()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the realistic page set as JSONL.")
    parser.add_argument("--out", type=Path, default=OUTPUT, help="where to write (default: next to this file)")
    out = parser.parse_args(argv).out
    rows = build()
    problems = check(rows)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    with out.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"wrote {len(rows)} rows to {out}")
    for name, n in sorted(Counter(r["group"] for r in rows).items()):
        print(f"  group {name:10s} {n}")
    for label in LABELS:
        print(f"  label {sum(label in r['labels'] for r in rows):3d}  {label}")
    print(f"  no title: {sum(r['title'] is None for r in rows)}, "
          f"opaque url (shares no word with title): {sum(map(opaque, rows))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
