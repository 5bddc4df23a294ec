"""The sample's library: public-domain books with a few chapters each."""

from __future__ import annotations

BOOKS: list[tuple[str, str, int, str, int]] = [
    # (title, author, year, price, chapters)
    ("Pride and Prejudice", "Jane Austen", 1813, "9.50", 6),
    ("Emma", "Jane Austen", 1815, "8.90", 5),
    ("Persuasion", "Jane Austen", 1817, "7.80", 4),
    ("Moby-Dick", "Herman Melville", 1851, "12.40", 8),
    ("Bartleby, the Scrivener", "Herman Melville", 1853, "4.20", 2),
    ("Great Expectations", "Charles Dickens", 1861, "10.10", 7),
    ("Bleak House", "Charles Dickens", 1853, "11.60", 8),
    ("A Tale of Two Cities", "Charles Dickens", 1859, "9.90", 6),
    ("Middlemarch", "George Eliot", 1872, "13.20", 8),
    ("Frankenstein", "Mary Shelley", 1818, "6.70", 4),
    ("Dracula", "Bram Stoker", 1897, "8.30", 6),
    ("The Time Machine", "H. G. Wells", 1895, "5.40", 3),
    ("The War of the Worlds", "H. G. Wells", 1898, "6.10", 4),
    ("Jane Eyre", "Charlotte Brontë", 1847, "9.20", 6),
    ("Wuthering Heights", "Emily Brontë", 1847, "8.80", 5),
    ("Little Women", "Louisa May Alcott", 1868, "9.60", 6),
    ("Walden", "Henry David Thoreau", 1854, "7.30", 5),
    ("Heart of Darkness", "Joseph Conrad", 1899, "5.20", 3),
    ("Treasure Island", "Robert Louis Stevenson", 1883, "6.90", 5),
    ("Strange Case of Dr Jekyll and Mr Hyde", "Robert Louis Stevenson", 1886, "4.80", 3),
    ("The Picture of Dorian Gray", "Oscar Wilde", 1890, "7.60", 5),
    ("Crime and Punishment", "Fyodor Dostoevsky", 1866, "11.90", 7),
    ("Anna Karenina", "Leo Tolstoy", 1878, "14.50", 8),
    ("The Adventures of Tom Sawyer", "Mark Twain", 1876, "6.40", 4),
]

CHAPTER_WORDS = [
    "Arrival",
    "Letters",
    "The Ball",
    "A Journey",
    "Misunderstandings",
    "The Storm",
    "Confessions",
    "Homecoming",
]
