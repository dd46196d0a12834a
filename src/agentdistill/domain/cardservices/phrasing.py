"""How the card desk's scripted customers word their requests: paraphrase templates per request, plus date-of-birth
and money formats (the held-out share, typos and the other slot formats are domain/phrasing.py's)."""

from __future__ import annotations

import datetime as dt
import random

from agentdistill.domain.phrasing import MONTHS
from agentdistill.domain.phrasing import Phraser as BasePhraser

# key -> templates; fields in braces are slot values (never touched by typos)
TEMPLATES: dict[str, tuple[str, ...]] = {
    "greeting": ("Hi!", "Hello there.", "Hey, good morning.", "Good afternoon!", "Hi, I need some help with a card.",
                 "Hello", "hey", "Evening! Quick card question."),
    "bye": ("Thanks, that's all!", "Great, thank you. Bye!", "Perfect, thanks for your help.", "Cheers, that's it.",
            "ok thanks bye", "That's everything for today, thank you.", "Thanks a lot, have a good day.",
            "Much appreciated, goodbye."),
    "identity": ("My date of birth is {dob} and my zip code is {zip}.", "DOB {dob}, zip {zip}.",
                 "I was born on {dob}; zip code {zip}.", "Born {dob}, and the zip on my account is {zip}.",
                 "For verification: {dob}, zip code {zip}.", "dob {dob} zip {zip}",
                 "My birthday is {dob} and I live in zip {zip}.", "Date of birth: {dob}. Zip: {zip}."),
    "identity.on_ask": ("Sure. {identity}", "Of course: {identity}", "{identity}", "Here you go. {identity}"),
    "list_cards": ("Which cards do I have with you?", "Can you list my cards?", "What cards are on my account?",
                   "Show me all my cards, please.", "I'd like to see which cards I hold.", "my cards?",
                   "Could you tell me which of my cards are active?", "What cards do I currently have?"),
    "card_details": ("What's the balance on my card ending {last4}?", "Can you give me the details of the card "
                     "ending {last4}?", "How much credit is left on my card ending in {last4}?",
                     "Tell me about my card ending {last4}.", "What's the status of the card ending {last4}?",
                     "card ending {last4} balance pls", "Check my card ending {last4} for me, please.",
                     "I'd like an overview of my card ending in {last4}."),
    "freeze": ("Please freeze my card ending {last4}.", "Can you freeze the card ending in {last4}?",
               "I misplaced my card ending {last4}, please freeze it for now.", "Freeze card {last4}, please.",
               "I'd like to temporarily lock my card ending {last4}.", "freeze my card ending {last4}",
               "Put a freeze on my card ending {last4} until I find it.", "Could you pause my card ending {last4}?"),
    "unfreeze": ("Please unfreeze my card ending {last4}.", "Can you unfreeze the card ending in {last4}?",
                 "I found my card ending {last4}, please unfreeze it.", "Unfreeze card {last4}, please.",
                 "I'd like my card ending {last4} working again.", "unfreeze card ending {last4}",
                 "Could you lift the freeze on my card ending {last4}?", "Please reactivate my frozen card {last4}."),
    "found_it": ("Good news, I found it! Please unfreeze it again.", "Never mind, it was in my coat. Unfreeze it, "
                 "please.", "Found the card, can you unfreeze it?", "Actually I have it after all, please unfreeze it.",
                 "Oh, it turned up. Please make it work again.", "found it lol, unfreeze pls",
                 "Sorry, false alarm: I found it. Please unfreeze.", "It was in the car. Can you undo the freeze?"),
    "lost": ("I've lost my card ending {last4}. Please block it and send me a new one.",
             "My card ending {last4} was {problem}. Can you block it and order a replacement?",
             "Please cancel my {problem} card ending {last4} and replace it.",
             "The card ending in {last4} is {problem}; block it and send a replacement, please.",
             "I need to report my card ending {last4} as {problem} and get a new card.",
             "card ending {last4} {problem}, block it + new card pls",
             "Someone has my card ending {last4}, it was {problem}. Block it and send another one.",
             "My card ending {last4} is gone ({problem}). Please stop it and replace it."),
    "express": ("Express delivery, please.", "Can you send it express?", "I need it fast, express please.",
                "Make it express.", "Express shipping, if possible.", "express pls", "Please use express delivery.",
                "I'd like the faster delivery."),
    "damaged": ("My card ending {last4} is damaged. Can I get a replacement?",
                "The chip on my card ending {last4} stopped working, please replace it.",
                "My card ending in {last4} is cracked. I need a new one.",
                "Please replace my damaged card ending {last4}.",
                "The card ending {last4} is bent and won't work in machines. Replacement please.",
                "card ending {last4} broken, need a new one",
                "Could you send me a replacement for my damaged card ending {last4}?",
                "My card ending {last4} got damaged in the wash. Can you replace it?"),
    "transactions": ("Show me the recent transactions on my card ending {last4}.",
                     "What did I spend on the card ending {last4} lately?",
                     "Can I see the last month of charges on my card ending in {last4}?",
                     "List the transactions on card {last4}, please.",
                     "I want to check the recent activity on my card ending {last4}.",
                     "recent charges card ending {last4}?", "What's been charged to my card ending {last4}?",
                     "Could you pull up my latest transactions for the card ending {last4}?"),
    "dispute": ("I want to dispute transaction {txn_id}: {why}.", "Please open a dispute on {txn_id}, {why}.",
                "Transaction {txn_id} is wrong: {why}. Can you dispute it?",
                "I'd like to dispute {txn_id} because {why}.", "Dispute {txn_id} for me, please: {why}.",
                "dispute {txn_id} pls, {why}", "Can you raise a dispute for transaction {txn_id}? {why}.",
                "I'm disputing the charge {txn_id}; {why}."),
    "dispute_status": ("What's the status of my dispute {dispute_id}?", "Any news on dispute {dispute_id}?",
                       "Can you check dispute {dispute_id} for me?", "Where are we with dispute {dispute_id}?",
                       "Has dispute {dispute_id} been decided?", "status of {dispute_id}?",
                       "I'm following up on dispute {dispute_id}.", "Could you look up dispute {dispute_id}?"),
    "travel": ("I'm travelling to {country} from {depart} to {back}. Please add a travel notice.",
               "Can you set a travel notice for {country}, {depart} until {back}?",
               "I'll be in {country} from {depart} to {back}; please make sure my cards work there.",
               "Please note a trip to {country}, leaving {depart}, back {back}.",
               "Travel notice: {country}, {depart} to {back}, please.",
               "going to {country} {depart} - {back}, travel notice pls",
               "I'm off to {country} on {depart} and return on {back}. Can you let the bank know?",
               "Could you register my trip to {country} between {depart} and {back}?"),
    "limit": ("I'd like to raise the credit limit on my card ending {last4} to {amount}.",
              "Can you increase my limit on the card ending {last4} to {amount}?",
              "Please request a credit limit of {amount} for my card ending in {last4}.",
              "I want a higher limit on card {last4}: {amount}, please.",
              "Could the limit on my card ending {last4} go up to {amount}?",
              "limit increase card ending {last4} to {amount}",
              "I'm asking for a credit limit increase to {amount} on the card ending {last4}.",
              "Can I get {amount} as the limit on my card ending {last4}?"),
    "limit.retry": ("OK, then {amount}, please.", "Fine, let's try {amount}.", "Then make it {amount}.",
                    "{amount} then.", "Alright, request {amount} instead.", "ok {amount}",
                    "In that case, {amount} please.", "Let's go with {amount}."),
    "branch": ("What are the opening hours of the {branch}?", "Where is the {branch} and when is it open?",
               "When can I visit the {branch}?", "What's the address of the {branch}?",
               "Hours for the {branch}, please.", "is the {branch} open on saturday?",
               "How do I get to the {branch}, and what are its hours?", "Tell me about the {branch}."),
    "fees": ("What fees do you charge on cards?", "Can you tell me your card fees?", "What's your fee schedule?",
             "How much does a replacement card cost?", "Are there fees for using my card abroad?", "card fees?",
             "Which fees apply to my cards?", "Could you list the fees for your cards?"),
    "fraud": ("I think someone is using my card: there are charges I didn't make.",
              "I want to report fraud on my account.", "There are purchases on my statement that I never made.",
              "My card details were stolen online, I think this is fraud.",
              "Someone made payments with my card without my permission.", "fraud on my card!!",
              "I got a text about a purchase I didn't make. I think it's fraud.",
              "There's suspicious activity on my card and I want it investigated."),
    "complaint": ("I'm really unhappy: the staff at the {branch} were rude to me.",
                  "This is unacceptable, my card was declined three times and nobody helped.",
                  "I want to file a complaint about your service.", "Terrible service at the {branch}, I'm angry.",
                  "Nobody at the {branch} called me back. I want to complain.", "worst bank ever, i want to complain",
                  "I'd like to make a formal complaint about how my dispute was handled.",
                  "I'm fed up: I waited an hour at the {branch}. This is a complaint."),
    "human": ("Can I talk to a real person please?", "I'd like to speak to a manager.", "Get me a human.",
              "Can I speak with someone from your staff?", "Transfer me to a person, please.", "real person pls",
              "I'd rather talk to an actual human being.", "Put me through to an agent."),
    "refund": ("Just refund me the charge now, I don't want a dispute.", "I want my money back today.",
               "Waive my late payment fee, please.", "Refund the last charge on my card immediately.",
               "Can you promise me a refund for that purchase?", "refund me now",
               "I demand you reverse the fee you charged me.", "Give me my money back for that charge right away."),
}
DISPUTE_WHY = {"unrecognised": ("I don't recognise it", "I never made this purchase", "no idea what this is"),
               "duplicate": ("I was charged twice", "it's a duplicate of another charge", "double charge"),
               "not_received": ("I never received the goods", "the order never arrived", "nothing was delivered"),
               "wrong_amount": ("the amount is wrong", "they charged more than agreed", "wrong amount charged")}


class CardPhraser(BasePhraser):
    """The card desk's requests (TEMPLATES), dates of birth and amounts in dollars."""

    def __init__(self, rng: random.Random, split: str, today: str, typo_rate: float = 0.08):
        super().__init__(rng, split, today, TEMPLATES, typo_rate)

    def dob(self, iso: str) -> str:
        d = dt.date.fromisoformat(iso)
        month = MONTHS[d.month - 1]
        return self.choose((f"{month} {d.day}, {d.year}", iso, f"{d.month:02d}/{d.day:02d}/{d.year}",
                            f"{d.day} {month} {d.year}", f"{month[:3]} {d.day} {d.year}", f"{d.month}/{d.day}/{d.year}",
                            f"the {d.day} of {month} {d.year}", f"{d.year}/{d.month:02d}/{d.day:02d}"))

    def why(self, reason: str) -> str:
        return self.choose(DISPUTE_WHY[reason])
