"""Search: a real-time hybrid (lexical + dense) index of posts fed by the firehose, retrieval that
fuses the two, and answers that summarise what people say while citing the posts they rest on."""
